"""The work behind conclave's MCP tools, free of the protocol: every run goes through
`Consensus` (the one call path), presets come from the same files `conclave serve` takes, and
runs are kept in (and read back from) the same store the CLI and the service use.

Caller mistakes and failed runs raise `ConclaveError`s with messages meant for the caller; the
server turns them into MCP tool errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from conclave.config import ConsensusConfig, StrategyName
from conclave.consensus.strategies import get_strategy, strategy_names
from conclave.consensus.transcript import Transcript
from conclave.errors import ConfigError, ConsensusError
from conclave.mcp.results import (
    AskResult,
    EmbeddedModel,
    ModelList,
    PanelModel,
    PresetInfo,
    PresetList,
    ask_result,
)
from conclave.presets import load_presets
from conclave.providers.packs import pack_statuses
from conclave.providers.readiness import check_embedded_models
from conclave.providers.registry import ProviderRegistry
from conclave.redaction import Redactor, known_secrets
from conclave.server.api_errors import ApiError
from conclave.server.catalog import DEFAULT_ALIAS, check_credentials
from conclave.server.security import check_conversation
from conclave.server.service_settings import ServerSettings
from conclave.session import Consensus, conversation_from
from conclave.store import RunStore, StoreSettings, open_run_store


@dataclass(frozen=True)
class _Ready:
    """A named config bound to its providers, with the redactor that knows its secrets."""

    name: str
    consensus: Consensus
    redact: Redactor


class ConsensusTools:
    """The consensus as tools: ask, list the presets and models, read a kept run.

    One `Consensus` per preset (and per strategy asked of it) lives as long as the tools, so
    the members' breakers and the loaded models carry over from one call to the next.
    `allow_config_files`: whether `ask` may read a config file named by the caller (over
    stdio the caller is the local user; over HTTP only the server's presets are offered).
    """

    def __init__(
        self,
        presets: Sequence[tuple[str, ConsensusConfig]],
        *,
        registry: ProviderRegistry,
        store: RunStore | None,
        limits: ServerSettings,
        allow_config_files: bool,
        extra_secrets: Sequence[str] = (),
    ) -> None:
        if not presets:
            raise ConfigError("an MCP server needs at least one consensus preset")
        self._registry = registry
        self._store = store
        self._limits = limits
        self._allow_config_files = allow_config_files
        self._extra_secrets = tuple(extra_secrets)
        self._presets: dict[str, _Ready] = {}
        for name, config in presets:
            if name in self._presets:
                raise ConfigError(
                    f"two configs are both named {name!r}: give each a distinct `name`"
                )
            self._presets[name] = self._bind(name, config, source=f"preset {name!r}")
        self._default = next(iter(self._presets.values()))
        self.redact = Redactor(
            [*self._extra_secrets, *known_secrets(registry.settings, [c for _, c in presets])]
        )
        """Redacts every secret known at start (the API keys, the presets' provider keys)."""
        self._variants: dict[tuple[str, str], _Ready] = {}
        self._files: dict[tuple[Path, int], _Ready] = {}

    @classmethod
    async def open(
        cls,
        config_paths: Sequence[Path],
        *,
        allow_config_files: bool,
        limits: ServerSettings,
        registry: ProviderRegistry | None = None,
    ) -> ConsensusTools:
        """Tools over the presets in `config_paths` (the embedded models without any) and the
        run store the environment names. Raises ConfigError, MissingCredentialsError or
        ModelPackMissingError when a preset could never run or the store cannot be opened."""
        registry = registry or ProviderRegistry()
        presets = load_presets(config_paths)
        api_keys = [key.get_secret_value() for key in limits.api_keys]
        secrets = [*api_keys, *known_secrets(registry.settings, [c for _, c in presets])]
        store_settings = StoreSettings()
        store = None
        if store_settings.enabled:
            store = open_run_store(
                home=registry.settings.home,
                settings=store_settings,
                redact=Redactor(secrets),
                source="mcp",
            )
        try:
            return cls(
                presets,
                registry=registry,
                store=store,
                limits=limits,
                allow_config_files=allow_config_files,
                extra_secrets=api_keys,
            )
        except BaseException:
            if store is not None:
                store.close()
            await registry.aclose()
            raise

    # --- the tools --------------------------------------------------------------------------

    async def ask(
        self,
        prompt: str,
        *,
        system: str | None = None,
        preset: str | None = None,
        config: str | None = None,
        strategy: StrategyName | None = None,
    ) -> AskResult:
        """Run the consensus on `prompt` with a preset (the default one) or a config file."""
        ready = self._choose(preset, config, strategy)
        conversation = conversation_from(prompt, system=system)
        try:
            check_conversation(
                conversation,
                max_chars=self._limits.max_prompt_chars,
                max_messages=self._limits.max_messages,
                param="prompt",
            )
        except ApiError as exc:
            raise ConfigError(exc.message) from None
        try:
            transcript = await ready.consensus.ask(conversation)
        except ConsensusError as exc:
            if exc.transcript is None:
                raise
            failed = ready.redact.model(exc.transcript)
            kept = await self._keep(failed, ready.name)
            where = f" (run {failed.id} is kept: get_run shows every call)" if kept else ""
            raise ConsensusError(f"no consensus: {ready.redact(str(exc))}{where}") from None
        transcript = ready.redact.model(transcript)
        kept = await self._keep(transcript, ready.name)
        return ask_result(
            transcript, preset=ready.name, strategy=ready.consensus.config.strategy, kept=kept
        )

    def list_presets(self) -> PresetList:
        """The presets `ask` accepts, the default first, and the strategies."""
        return PresetList(
            presets=tuple(
                _preset_info(ready, default=ready is self._default)
                for ready in self._presets.values()
            ),
            strategies=strategy_names(),
        )

    def list_models(self) -> ModelList:
        """The models the presets use, and the embedded models with what is installed."""
        used: dict[tuple[str, str], list[str]] = {}
        for ready in self._presets.values():
            config = ready.consensus.config
            for spec in (*config.models, config.aggregator_spec.model):
                names = used.setdefault((spec.id, spec.provider), [])
                if ready.name not in names:
                    names.append(ready.name)
        return ModelList(
            panel_models=tuple(
                PanelModel(id=model_id, provider=provider, presets=tuple(names))
                for (model_id, provider), names in used.items()
            ),
            embedded=tuple(
                EmbeddedModel(
                    id=f"local:{status.pack.name}",
                    title=status.pack.title,
                    description=status.pack.description,
                    size_bytes=status.pack.size_bytes,
                    installed=status.installed,
                )
                for status in pack_statuses(self._registry.settings.models_dir)
            ),
        )

    async def get_run(self, run_id: str) -> Transcript:
        """A kept run's whole transcript: every call, what it was sent and what came back."""
        if self._store is None:
            raise ConfigError(
                "runs are not kept (CONCLAVE_STORE_ENABLED=false): the answer of `ask` is all "
                "there is"
            )
        transcript = await self._store.get(run_id.strip())
        if transcript is None:
            raise ConfigError(
                f"no run {run_id!r} is kept: give the run_id that `ask` returned "
                "(`conclave log` lists the kept runs)"
            )
        return transcript

    async def aclose(self) -> None:
        """Write the runs still pending and free the providers (loaded models, connections)."""
        try:
            if self._store is not None:
                await self._store.aclose()
        finally:
            await self._registry.aclose()

    # --- choosing and binding panels --------------------------------------------------------

    def _choose(
        self, preset: str | None, config: str | None, strategy: StrategyName | None
    ) -> _Ready:
        if preset is not None and config is not None:
            raise ConfigError("give either a preset or a config file, not both")
        base = self._from_file(config) if config is not None else self._preset(preset)
        if strategy is None or strategy == base.consensus.config.strategy:
            return base
        get_strategy(strategy)  # an unknown name: ConfigError naming the choices
        key = (base.name, strategy)
        variant = self._variants.get(key)
        if variant is None:
            config_variant = base.consensus.config.with_changes(strategy=strategy)
            variant = self._bind(f"{base.name}:{strategy}", config_variant, source=base.name)
            self._variants[key] = variant
        return variant

    def _preset(self, name: str | None) -> _Ready:
        if name is None or (name == DEFAULT_ALIAS and DEFAULT_ALIAS not in self._presets):
            return self._default
        ready = self._presets.get(name)
        if ready is None:
            known = ", ".join([DEFAULT_ALIAS, *(n for n in self._presets if n != DEFAULT_ALIAS)])
            raise ConfigError(f"no preset {name!r}: the presets are {known} (see list_presets)")
        return ready

    def _from_file(self, path_text: str) -> _Ready:
        if not self._allow_config_files:
            raise ConfigError(
                "this server takes no config files from its callers (served over HTTP): "
                "choose one of its presets (list_presets), or start `conclave mcp --config "
                "FILE` with it"
            )
        path = Path(path_text).expanduser().resolve()
        try:
            modified = path.stat().st_mtime_ns
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
        ready = self._files.get((path, modified))
        if ready is None:
            ((name, config),) = load_presets([path])
            ready = self._bind(name, config, source=str(path))
            self._files[(path, modified)] = ready
        return ready

    def _bind(self, name: str, config: ConsensusConfig, *, source: str) -> _Ready:
        """`config` ready to run: its embedded models installed, its keys set."""
        check_embedded_models(config, self._registry.settings.models_dir, source=source)
        consensus = Consensus(config, registry=self._registry)
        check_credentials(name, consensus.panel, self._registry.settings)
        secrets = [*self._extra_secrets, *known_secrets(self._registry.settings, [config])]
        return _Ready(name=name, consensus=consensus, redact=Redactor(secrets))

    async def _keep(self, transcript: Transcript, preset: str) -> bool:
        if self._store is None:
            return False
        await self._store.put(transcript, preset=preset)
        return True


def _preset_info(ready: _Ready, *, default: bool) -> PresetInfo:
    config = ready.consensus.config
    return PresetInfo(
        name=ready.name,
        default=default,
        strategy=config.strategy,
        members=tuple(spec.id for spec in config.models),
        aggregator=config.aggregator_spec.model.id,
        iterations=config.iterations,
    )
