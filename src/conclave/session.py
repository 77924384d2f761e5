"""`Consensus`: the public entry point that ties a config, its providers and the engine."""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Sequence
from types import TracebackType

from conclave.config import ConsensusConfig
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.events import ConsensusEvent
from conclave.consensus.panel import build_panel
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
    ) -> None:
        self.config = config or embedded_config()
        self._registry = registry or ProviderRegistry()
        self.panel = build_panel(self.config, self._registry)
        self._engine = ConsensusEngine(self.config, self.panel, rng=rng)

    def events(
        self,
        prompt: str | Sequence[Message],
        *,
        system: str | None = None,
        stream_aggregate: bool = True,
    ) -> AsyncGenerator[ConsensusEvent, None]:
        """The run's events as they happen; the last one carries the transcript.

        Without `stream_aggregate` the aggregator's text comes whole in its finished event
        (no AggregateDelta pieces), which costs less CPU when nobody watches it grow."""
        return self._engine.run(
            conversation_from(prompt, system=system), stream_aggregate=stream_aggregate
        )

    async def ask(
        self, prompt: str | Sequence[Message], *, system: str | None = None
    ) -> Transcript:
        """Run consensus and return the transcript (its `answer` is the final consensus)."""
        return await self._engine.run_to_end(conversation_from(prompt, system=system))

    async def aclose(self) -> None:
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
