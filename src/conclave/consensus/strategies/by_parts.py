"""A request of several numbered questions answered part by part.

Asked several questions in one message ("1. ... 2. ... 3. ... Reply in the form 1. <letter>
2. <number> 3. <a few words>"), a small model often copies the reply template instead of
answering, or answers one part only. So each part is asked as a question of its own, in its own
form (`forms.part_conversations`: the part as written, with the plain instruction of the form
its answer is asked in), through a consensus of its own nested in the run (the engine's
`StrategyContext.nested`, as a swarm's steps are run): the same strategy, config and panel, so
every part goes through the strategy's stages as a lone question would. The answer has every
part's answer on its numbered line; the round's step record (`parts`) keeps every part's calls,
each named after its part.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing

from conclave.consensus.events import (
    AggregateDelta,
    AggregateFinished,
    ConsensusDone,
    StepProgress,
)
from conclave.consensus.forms import part_conversations
from conclave.consensus.steps import Combiner, CombinerEvent, NestedConsensus
from conclave.consensus.transcript import CallRecord, StepRecord, Transcript
from conclave.errors import ConsensusError
from conclave.types import Message

PARTS_STEP = "parts"


class PartByPart:
    """A combiner: a round that asked no member of a request of several numbered questions is
    answered part by part (see the module's account); any other round is `inner`'s."""

    def __init__(self, inner: Combiner, nested: Callable[[], NestedConsensus]) -> None:
        self._inner = inner
        self._nested = nested

    async def combine(
        self,
        round_index: int,
        conversation: Sequence[Message],
        candidates: Sequence[CallRecord],
        *,
        stream: bool,
    ) -> AsyncGenerator[CombinerEvent, None]:
        parts = part_conversations(conversation) if not candidates else ()
        if not parts:
            async with aclosing(
                self._inner.combine(round_index, conversation, candidates, stream=stream)
            ) as events:
                async for event in events:
                    yield event
            return
        consensus = self._nested()
        lines: list[str] = []
        calls: list[CallRecord] = []
        for number, asked in enumerate(parts, 1):
            transcript = await _answer(consensus, asked)
            answer = transcript.answer.strip() if transcript is not None else ""
            if transcript is not None:
                calls.extend(transcript.standalone_calls(f"part {number}"))
            lines.append(f"{number}. {' '.join(answer.split())}".rstrip())
            yield StepProgress(
                step=PARTS_STEP,
                round=round_index,
                name=f"part {number}",
                status="finished" if answer else "failed",
                message=answer or "no answer",
            )
        text = "\n".join(lines)
        if stream:
            yield AggregateDelta(round=round_index, text=text)
        record = CallRecord(model=PARTS_STEP, role="aggregator", text=text)
        yield AggregateFinished(
            round=round_index,
            response=record,
            decided_by="vote",
            steps=(StepRecord(step=PARTS_STEP, calls=tuple(calls)),),
        )


def is_request_of_parts(conversation: Sequence[Message]) -> bool:
    """Whether the conversation asks several numbered questions at once."""
    return bool(part_conversations(conversation))


async def _answer(consensus: NestedConsensus, asked: Sequence[Message]) -> Transcript | None:
    """One part's consensus: its transcript (as far as it went, when it failed)."""
    try:
        async for event in consensus.run(asked, stream_aggregate=False):
            if isinstance(event, ConsensusDone):
                return event.transcript
    except ConsensusError as exc:
        return exc.transcript
    return None
