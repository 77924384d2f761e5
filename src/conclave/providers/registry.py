"""Which provider serves a model: one shared instance per place a model can live."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from conclave.config import ModelSpec, ProviderKind
from conclave.errors import ConfigError, MissingCredentialsError
from conclave.providers.base import Provider
from conclave.settings import Settings

if TYPE_CHECKING:
    from conclave.providers.openrouter import OpenRouterProvider


class ProviderRegistry:
    """Creates providers on first use and keeps them: one for OpenRouter, one for the embedded
    models, one per OpenAI-compatible URL and key. `overrides` replaces a whole kind (tests)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        overrides: Mapping[ProviderKind, Provider] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._overrides = dict(overrides or {})
        self._providers: dict[tuple[str, ...], Provider] = {}

    def provider_for(self, spec: ModelSpec) -> Provider:
        kind = spec.provider
        if kind in self._overrides:
            return self._overrides[kind]
        key = (kind, spec.base_url or "", spec.api_key_env or "")
        if key not in self._providers:
            self._providers[key] = self._create(spec)
        return self._providers[key]

    def replaces(self, kind: ProviderKind) -> bool:
        """Whether `kind` is served by an override rather than the provider conclave creates."""
        return kind in self._overrides

    def openrouter(self) -> OpenRouterProvider:
        from conclave.providers.openrouter import OpenRouterProvider

        provider = self.provider_for(ModelSpec(id="openrouter:any"))
        if not isinstance(provider, OpenRouterProvider):
            raise ConfigError("OpenRouter is replaced by another provider here")
        return provider

    def local(self) -> Provider:
        return self.provider_for(ModelSpec(id="local:any"))

    async def aclose(self) -> None:
        providers = list(self._providers.values())
        self._providers.clear()
        for provider in providers:
            await provider.aclose()

    def _create(self, spec: ModelSpec) -> Provider:
        settings = self.settings
        if spec.provider == "local":
            from conclave.providers.local import LocalProvider

            return LocalProvider(
                models_dir=settings.models_dir,
                n_threads=settings.threads,
                fit_to_load="threads" not in settings.model_fields_set,  # CONCLAVE_THREADS wins
                replicas=settings.local_replicas,
            )
        if spec.provider == "openai":
            from conclave.providers.openai_compat import OpenAICompatibleProvider

            assert spec.base_url is not None
            return OpenAICompatibleProvider(
                base_url=spec.base_url,
                api_key=_key_from_env(spec),
                name=spec.base_url,
                max_retries=settings.max_retries,
            )
        from conclave.providers.openrouter import OpenRouterProvider

        key = settings.openrouter_api_key
        return OpenRouterProvider(
            api_key=key.get_secret_value() if key else None,
            base_url=settings.openrouter_base_url,
            app_url=settings.app_url,
            app_title=settings.app_title,
            max_retries=settings.max_retries,
        )


def _key_from_env(spec: ModelSpec) -> str | None:
    if spec.api_key_env is None:
        return None
    key = os.environ.get(spec.api_key_env)
    if not key:
        raise MissingCredentialsError(
            f"{spec.id} at {spec.base_url} needs an API key: set the environment variable "
            f"{spec.api_key_env} (named by api_key_env in the config)"
        )
    return key
