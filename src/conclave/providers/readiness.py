"""Whether a config's embedded models can run, found before the first request.

`conclave config check` and `conclave serve` call this so that `local:nonexistent`, or a pack
that is not installed, stops the start with the fix, instead of failing every request."""

from __future__ import annotations

from pathlib import Path

from conclave.config import ConsensusConfig
from conclave.errors import ConfigError, ModelPackMissingError
from conclave.providers.packs import get_pack, pack_status


def check_embedded_models(config: ConsensusConfig, models_dir: Path, *, source: str) -> None:
    """Raise ConfigError for an unknown `local:` name and ModelPackMissingError (with the
    install command) for a pack that is not installed. Hashes nothing: fast enough for a start."""
    specs = (*config.models, config.aggregator_spec.model)
    for name in dict.fromkeys(spec.model_name for spec in specs if spec.provider == "local"):
        try:
            pack = get_pack(name)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        status = pack_status(pack, models_dir)
        if not status.installed:
            raise ModelPackMissingError(
                f"{source}: the embedded model pack {name!r} is not installed "
                f"(missing {', '.join(status.missing)}). Install it with:\n{pack.install_hint()}"
            )
