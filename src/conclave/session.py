"""`Consensus`: the public entry point, and the one place that wires a config, the strategy
registry and the providers into an engine. The CLI, the server's presets, batch and eval all
build their engines here."""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Sequence
from types import TracebackType

from conclave.config import ConsensusConfig
from conclave.consensus.agreement import Similarity
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.events import ConsensusEvent
from conclave.consensus.health import MemberHealth
from conclave.consensus.panel import Panel, build_panel
from conclave.consensus.transcript import Transcript
from conclave.presets import embedded_config
from conclave.providers.registry import ProviderRegistry
from conclave.types import Message


class Consensus:
    """Run consensus with a config (the embedded local models by default).

    ```python
    async with Consensus() as consensus:
        transcript = await consensus.ask("Why is the sky blue?")
        print(transcript.answer)
    ```
    """

    def __init__(
        self,
        config: ConsensusConfig | None = None,
        *,
        registry: ProviderRegistry | None = None,
        rng: random.Random | None = None,
        panel: Panel | None = None,
        health: MemberHealth | None = None,
        similarity: Similarity | None = None,
    ) -> None:
        """`registry` serves the config's models (a new one by default); `panel` reuses
        models already bound to their providers instead; `health` shares the breakers of
        another `Consensus` (the same upstreams); `rng` and `similarity` fix the draws and the
        answer comparison (for tests and evaluations)."""
        self.config = config or embedded_config()
        self._registry = registry or ProviderRegistry()
        self.panel = panel or build_panel(self.config, self._registry)
        self._rng = rng
        self._similarity = similarity
        self.engine = ConsensusEngine(
            self.config, self.panel, rng=rng, health=health, similarity=similarity
        )
        """The engine that runs this set-up (its `run` takes a prepared conversation)."""

    @property
    def health(self) -> MemberHealth:
        """The breakers of this set-up's models, shared by all its runs."""
        return self.engine.health

    def with_strategy(self, strategy: str) -> Consensus:
        """This set-up run with another registered `strategy`: the same models, providers and
        breakers (closing either closes the providers of both)."""
        return self.with_changes(strategy=strategy)

    def with_changes(self, **changes: object) -> Consensus:
        """This set-up with some config fields changed (`documents="manual"` grounds it in a
        collection): the same models, providers and breakers (closing either closes the
        providers of both)."""
        return Consensus(
            self.config.with_changes(**changes),
            registry=self._registry,
            rng=self._rng,
            panel=self.panel,
            health=self.health,
            similarity=self._similarity,
        )

    def events(
        self,
        prompt: str | Sequence[Message],
        *,
        system: str | None = None,
        stream_aggregate: bool = True,
    ) -> AsyncGenerator[ConsensusEvent, None]:
        """The run's events as they happen; the last one carries the transcript. Without
        `stream_aggregate` the aggregate's text comes whole, not in pieces."""
        conversation = conversation_from(prompt, system=system)
        return self.engine.run(conversation, stream_aggregate=stream_aggregate)

    async def ask(
        self, prompt: str | Sequence[Message], *, system: str | None = None
    ) -> Transcript:
        """Run consensus and return the transcript (its `answer` is the final consensus)."""
        return await self.engine.run_to_end(conversation_from(prompt, system=system))

    async def aclose(self) -> None:
        """Release the providers' connections, threads and model weights."""
        await self._registry.aclose()

    async def __aenter__(self) -> Consensus:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def conversation_from(
    prompt: str | Sequence[Message], *, system: str | None = None
) -> tuple[Message, ...]:
    """A conversation from a plain prompt or messages, with an optional system message first."""
    messages = (Message(role="user", content=prompt),) if isinstance(prompt, str) else tuple(prompt)
    if system is not None:
        messages = (Message(role="system", content=system), *messages)
    return messages
