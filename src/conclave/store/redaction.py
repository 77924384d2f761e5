"""Nothing secret is stored: the secrets a process knows, so that they can be cut out of a
transcript before it is written (the service's redactor also removes bearer tokens)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from conclave.config import ConsensusConfig
from conclave.settings import Settings


def known_secrets(settings: Settings, configs: Iterable[ConsensusConfig]) -> list[str]:
    """OpenRouter's key and the values of every `api_key_env` the configs name."""
    secrets = []
    if settings.openrouter_api_key is not None:
        secrets.append(settings.openrouter_api_key.get_secret_value())
    for config in configs:
        for spec in (*config.models, config.aggregator_spec.model):
            if spec.api_key_env and os.environ.get(spec.api_key_env):
                secrets.append(os.environ[spec.api_key_env])
    return secrets
