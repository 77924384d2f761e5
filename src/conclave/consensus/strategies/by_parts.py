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

A part that names an earlier one ("add 9 to the answer to part 1") is shown, before its
question, the parts it names and the answers they got: asked alone it could not know them. The
parts are answered in order, so those answers are there.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing

from conclave.consensus.answers import named_parts
from conclave.consensus.events import (
    AggregateDelta,
    AggregateFinished,
    ConsensusDone,
    StepProgress,
)
from conclave.consensus.forms import AskedPart, part_conversations
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
        answers: list[str] = []
        for number, part in enumerate(parts, 1):
            asked = with_earlier_answers(part, number, parts, answers)
            transcript = await _answer(consensus, asked)
            answer = transcript.answer.strip() if transcript is not None else ""
            if transcript is not None:
                calls.extend(transcript.standalone_calls(f"part {number}"))
            answers.append(" ".join(answer.split()))
            lines.append(f"{number}. {answers[-1]}".rstrip())
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


def with_earlier_answers(
    part: AskedPart, number: int, parts: Sequence[AskedPart], answers: Sequence[str]
) -> tuple[Message, ...]:
    """Part `number`'s conversation, with the earlier parts its question names and their
    `answers` written before it (as they stand when the part is asked)."""
    named = [n for n in named_parts(part.question) if 1 <= n < number and n <= len(answers)]
    if not named:
        return part.conversation
    earlier = "\n".join(
        f"Part {n}: {parts[n - 1].question.strip()}\nAnswer to part {n}: {answers[n - 1] or 'none'}"
        for n in named
    )
    *before, asked = part.conversation
    return (*before, Message(role="user", content=f"{earlier}\n\n{asked.content}"))


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
