"""The catalog of consensus presets a server offers: each a validated config with its ready
engine. (The ready-made configs themselves are in `conclave.presets`.)

A preset is what an OpenAI client names as its `model`. `default` always names the first one.
`<preset>:<strategy>` (e.g. `embedded:vote`, `default:adaptive`) runs a preset's panel with
another strategy, so any OpenAI client can choose the strategy per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from conclave.config import ConsensusConfig, DocumentsOptions
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.panel import Panel
from conclave.consensus.strategies import strategy_names
from conclave.documents.index import checked_name
from conclave.documents.library import open_collection
from conclave.errors import ConfigError, MissingCredentialsError
from conclave.providers.registry import ProviderRegistry
from conclave.server.api_errors import ApiError, unknown_model
from conclave.session import Consensus
from conclave.settings import Settings

DEFAULT_ALIAS = "default"
STRATEGIES = strategy_names()
"""The strategies registered when the server loads (`strategy_names()` is the live list)."""


@dataclass(frozen=True)
class Preset:
    """A named consensus set-up, ready to run."""

    name: str
    consensus: Consensus

    @property
    def config(self) -> ConsensusConfig:
        return self.consensus.config

    @property
    def engine(self) -> ConsensusEngine:
        return self.consensus.engine

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(member.label for member in self.engine.panel.members)

    @property
    def aggregator(self) -> str:
        return self.engine.panel.aggregator.label


class PresetCatalog:
    """The presets by name; the first is also `default`."""

    def __init__(self, presets: Sequence[Preset]) -> None:
        if not presets:
            raise ConfigError("a server needs at least one consensus preset")
        self._by_name: dict[str, Preset] = {}
        for preset in presets:
            if preset.name in self._by_name:
                raise ConfigError(
                    f"two configs are both named {preset.name!r}: give each a distinct `name`"
                )
            self._by_name[preset.name] = preset
        self.default = presets[0]
        self._variants: dict[str, Preset] = {}

    @property
    def presets(self) -> tuple[Preset, ...]:
        return tuple(self._by_name.values())

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a client may use, `default` first."""
        aliases = () if DEFAULT_ALIAS in self._by_name else (DEFAULT_ALIAS,)
        return (*aliases, *self._by_name)

    def resolve(self, model: str) -> Preset:
        """The preset a request's `model` names; ApiError 404 if none."""
        preset = self._by_name.get(model)
        if preset is not None:
            return preset
        if model == DEFAULT_ALIAS:
            return self.default
        base, _, strategy = model.rpartition(":")
        if base and strategy in strategy_names():
            return self._variant(self.resolve(base), strategy)
        raise unknown_model(model, (*self.names, f"<preset>:{'|'.join(strategy_names())}"))

    def grounded(self, preset: Preset, collection: str) -> Preset:
        """`preset` grounded in the server's document collection `collection` (the preset's
        other `documents` settings kept): built once, sharing the preset's providers.
        ApiError 400 for a name that cannot be a collection's, 404 for one that does not
        exist."""
        name = grounded_name(preset.name, collection)
        variant = self._variants.get(name)
        if variant is not None:
            return variant
        try:
            checked_name(collection)
        except ConfigError as exc:
            raise ApiError(400, str(exc), param="documents", code="invalid_value") from None
        kept = preset.config.documents
        options = DocumentsOptions(collection=collection, **_kept_options(kept))
        try:
            open_collection(options)
        except ConfigError as exc:
            raise ApiError(404, str(exc), param="documents", code="collection_not_found") from None
        consensus = preset.consensus.with_changes(documents=options.model_dump(mode="json"))
        variant = Preset(name=preset.name, consensus=consensus)
        self._variants[name] = variant
        return variant

    def _variant(self, preset: Preset, strategy: str) -> Preset:
        """`preset`'s panel run with `strategy`: built once, sharing the preset's providers and
        breakers."""
        name = f"{preset.name}:{strategy}"
        variant = self._variants.get(name)
        if variant is None:
            variant = Preset(name=name, consensus=preset.consensus.with_strategy(strategy))
            self._variants[name] = variant
        return variant


def grounded_name(preset_name: str, collection: str) -> str:
    """What tells a preset grounded in `collection` apart from the preset itself (its
    `Preset.name` stays the preset's, as clients named it)."""
    return f"{preset_name}+docs:{collection}"


def _kept_options(options: DocumentsOptions | None) -> dict[str, object]:
    """A preset's own `documents` settings but its collection (a request names that)."""
    if options is None:
        return {}
    return options.model_dump(exclude={"collection"})


def build_catalog(
    configs: Sequence[tuple[str, ConsensusConfig]], registry: ProviderRegistry
) -> PresetCatalog:
    """Bind every named config to its providers; raises ConfigError / MissingCredentialsError
    when a preset could never run (a key not set, names colliding)."""
    presets = []
    for name, config in configs:
        consensus = Consensus(config, registry=registry)
        check_credentials(name, consensus.panel, registry.settings)
        presets.append(Preset(name=name, consensus=consensus))
    return PresetCatalog(presets)


def check_credentials(name: str, panel: Panel, settings: Settings) -> None:
    """Fail at start, not on every request, when OpenRouter is used with no key set.

    (`build_panel` already fails for an unset `api_key_env`.)"""
    from conclave.providers.openrouter import MISSING_KEY_MESSAGE, OpenRouterProvider

    for member in (*panel.members, panel.aggregator):
        provider = member.provider
        if isinstance(provider, OpenRouterProvider) and settings.openrouter_api_key is None:
            raise MissingCredentialsError(
                f"preset {name!r} ({member.spec.id}): {MISSING_KEY_MESSAGE}"
            )
