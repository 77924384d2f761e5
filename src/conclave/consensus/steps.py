"""The pluggable steps of a consensus run, and the contract between them and the engine.

A run is: the steps before the first round (`ConversationStep`: grounding the conversation in
documents), then rounds until a stop rule says why to stop; each round asks the members its
`MemberSelector` chooses the messages its `RoundPrompt` builds, combines the answers its
`CandidatePool` picks with its `Combiner`; after the final round's consensus the checks run
(`AnswerStep`: a citation check that drops unsupported sentences or abstains). A strategy (see
`conclave.consensus.strategies`) is a choice of these steps, a `Steps`; it never forks the loop.

The contract:
- A step calls models only through `conclave.consensus.calls` (deadline, retries, breaker,
  record), and returns every call it made in its final event, so the transcript keeps it.
- A step yields its events as async generators; the engine forwards each one unchanged, in
  order, to every interface. Besides its final event, any step may yield `StepProgress` (a
  typed progress line that may carry a finished call). The final event of a combiner is one
  `AggregateFinished`; of a conversation step, one `ConversationPrepared`; of a check, one
  `AnswerChecked`. What a step wants kept beyond its calls goes in a `StepRecord` (its typed
  `report`), which the transcript keeps: `Transcript.prepared` for the steps before the first
  round, `RoundRecord.steps` for a combiner's and a check's.
- A selector may choose no members: that round asks nobody, has no quorum to meet, and its
  combiner does all the work (a swarm: plan, steps in parallel, synthesis).
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol

from conclave.config import AggregatorSpec, ConsensusConfig
from conclave.consensus.agreement import AgreementMeter
from conclave.consensus.answers import text_similarity
from conclave.consensus.calls import ModelCalls
from conclave.consensus.events import (
    AggregateDelta,
    AggregateFinished,
    AggregateRestarted,
    AnswerChecked,
    CombinerFellBack,
    ConsensusEvent,
    ConversationPrepared,
    StepProgress,
)
from conclave.consensus.panel import Member, Panel
from conclave.consensus.prompts import (
    aggregation_messages,
    anonymise_candidates,
    improvement_conversation,
    peer_answers_conversation,
)
from conclave.consensus.transcript import (
    CallError,
    CallRecord,
    DecidedBy,
    RoundRecord,
    StopReason,
)
from conclave.types import Message, Role, TextDelta, Usage

CombinerEvent = (
    AggregateDelta | AggregateRestarted | AggregateFinished | CombinerFellBack | StepProgress
)
"""What a combiner yields."""

PrepareEvent = ConversationPrepared | StepProgress
"""What a step before the first round yields."""

CheckEvent = AnswerChecked | StepProgress
"""What a check of the final consensus yields."""


class MemberSelector(Protocol):
    """Chooses which members answer a round (none: the combiner does the round's work), from
    the rounds before it and the conversation the rounds are given."""

    def select(
        self,
        round_index: int,
        members: tuple[Member, ...],
        history: Sequence[RoundRecord],
        conversation: Sequence[Message],
    ) -> tuple[Member, ...]: ...


class RoundPrompt(Protocol):
    """What the members of a round are sent, given the rounds before it."""

    def messages(
        self, conversation: Sequence[Message], history: Sequence[RoundRecord]
    ) -> tuple[Message, ...]: ...


class CandidatePool(Protocol):
    """Which answers a round combines: its own, or every answer so far."""

    def candidates(
        self, history: Sequence[RoundRecord], answered: Sequence[CallRecord]
    ) -> tuple[CallRecord, ...]: ...


class Combiner(Protocol):
    """Turns a round's answers into one consensus.

    Yields AggregateDelta pieces as the consensus is produced (only when `stream` is true), then
    exactly one AggregateFinished; an AggregateRestarted among the pieces voids those before it.
    StepProgress may come among them (a combiner with steps of its own).
    """

    def combine(
        self,
        round_index: int,
        conversation: Sequence[Message],
        candidates: Sequence[CallRecord],
        *,
        stream: bool,
    ) -> AsyncGenerator[CombinerEvent, None]: ...


class StopRule(Protocol):
    """Says why the run should stop after the rounds so far, or None to go on."""

    def stop_reason(self, rounds: Sequence[RoundRecord], usage: Usage) -> StopReason | None: ...


class ConversationStep(Protocol):
    """Runs once before the first round and may rewrite the conversation the rounds are given
    (put numbered passages from documents in). Yields StepProgress, then exactly one
    ConversationPrepared with the conversation from now on and what the step did."""

    name: str

    def prepare(self, conversation: tuple[Message, ...]) -> AsyncGenerator[PrepareEvent, None]: ...


class AnswerStep(Protocol):
    """Reads the final consensus (`round`'s, `answer` as the checks before it left it) and may
    revise it (drop or mark unsupported sentences, abstain). Yields StepProgress, then
    exactly one AnswerChecked."""

    name: str

    def check(
        self, round: RoundRecord, conversation: Sequence[Message], answer: str
    ) -> AsyncGenerator[CheckEvent, None]: ...


class NestedConsensus(Protocol):
    """A consensus a step runs inside the run (each step of a swarm): the engine itself, for
    another config and panel, sharing the run's breakers and randomness."""

    def run(
        self, conversation: Sequence[Message], *, stream_aggregate: bool = True
    ) -> AsyncGenerator[ConsensusEvent, None]: ...


NestedRuns = Callable[[ConsensusConfig, Panel], NestedConsensus]
"""Makes the consensus a step runs for a config and panel (the engine gives it to the steps
it builds, so that no step needs to know the engine)."""


@dataclass(frozen=True)
class Steps:
    """The engine's steps for one run: a strategy's choice (selector, prompt, pool, combiner,
    stop rules, meter) and the steps every strategy may have around its rounds (`before`,
    `after`), and the most rounds they can take."""

    selector: MemberSelector
    prompt: RoundPrompt
    pool: CandidatePool
    combiner: Combiner
    stop_rules: tuple[StopRule, ...]
    meter: AgreementMeter
    max_rounds: int
    before: tuple[ConversationStep, ...] = ()
    after: tuple[AnswerStep, ...] = ()


class EveryMember:
    """Flare's choice: every member answers every round."""

    def select(
        self,
        round_index: int,
        members: tuple[Member, ...],
        history: Sequence[RoundRecord],
        conversation: Sequence[Message],
    ) -> tuple[Member, ...]:
        return members


class ConsensusPrompt:
    """Flare's improvement round: the conversation, the last consensus, the improvement prompt;
    with `show_answers`, every answer of the last round too (anonymised), as MoA's layers and
    debates do."""

    def __init__(
        self,
        consensus_role: Role,
        improvement_prompt: str,
        *,
        show_answers: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self._role = consensus_role
        self._prompt = improvement_prompt
        self._show_answers = show_answers
        self._rng = rng or random.Random()

    def messages(
        self, conversation: Sequence[Message], history: Sequence[RoundRecord]
    ) -> tuple[Message, ...]:
        last = history[-1] if history else None
        if last is None or last.aggregate is None:
            return tuple(conversation)
        if self._show_answers:
            answers = anonymise_candidates([r.text for r in last.answered], self._rng)
            return peer_answers_conversation(
                conversation, answers, last.aggregate.text, self._role, self._prompt
            )
        return improvement_conversation(conversation, last.aggregate.text, self._role, self._prompt)


class FixedMembers:
    """The same chosen members every round (the samples of `sample`)."""

    def __init__(self, members: tuple[Member, ...]) -> None:
        self._members = members

    def select(
        self,
        round_index: int,
        members: tuple[Member, ...],
        history: Sequence[RoundRecord],
        conversation: Sequence[Message],
    ) -> tuple[Member, ...]:
        return self._members


class ThisRound:
    """A round combines its own answers."""

    def candidates(
        self, history: Sequence[RoundRecord], answered: Sequence[CallRecord]
    ) -> tuple[CallRecord, ...]:
        return tuple(answered)


class EveryRound:
    """A round combines every answer given so far (rounds that bring in new members)."""

    def candidates(
        self, history: Sequence[RoundRecord], answered: Sequence[CallRecord]
    ) -> tuple[CallRecord, ...]:
        return (*(r for record in history for r in record.answered), *answered)


class LLMAggregator:
    """Flare's centralised aggregation: one model reads the anonymised candidates and writes
    the consensus; streamed only when someone reads the pieces. Its call goes through `calls`,
    so a resting aggregator is skipped at once (and a fallback, if any, writes instead)."""

    def __init__(
        self, aggregator: Member, spec: AggregatorSpec, *, calls: ModelCalls, rng: random.Random
    ) -> None:
        self._aggregator = aggregator
        self._spec = spec
        self._calls = calls
        self._rng = rng

    async def combine(
        self,
        round_index: int,
        conversation: Sequence[Message],
        candidates: Sequence[CallRecord],
        *,
        stream: bool,
    ) -> AsyncGenerator[CombinerEvent, None]:
        messages = aggregation_messages(
            self._spec.aggregator_context,
            self._spec.aggregator_prompt,
            conversation,
            anonymise_candidates([c.text for c in candidates], self._rng),
        )
        writing = written_consensus(self._calls, self._aggregator, messages, round_index, stream)
        async with aclosing(writing) as events:
            async for event in events:
                yield event


async def written_consensus(
    calls: ModelCalls, writer: Member, messages: Sequence[Message], round_index: int, stream: bool
) -> AsyncGenerator[CombinerEvent, None]:
    """`writer` writing the round's consensus from `messages`, through `calls`: its text as
    AggregateDelta pieces when `stream` (else one call, which costs less CPU), then the
    AggregateFinished carrying its call."""
    if not stream:
        record = await calls.ask(writer, "aggregator", messages)
    else:
        record = None
        streaming = calls.stream(writer, "aggregator", messages)
        async with aclosing(streaming) as items:
            async for item in items:
                if isinstance(item, TextDelta):
                    yield AggregateDelta(round=round_index, text=item.text)
                else:
                    record = item
        assert record is not None  # a stream of calls ends with its record
    yield AggregateFinished(round=round_index, response=record)


class WithFallbacks:
    """The combiner, and when it fails the fallbacks in order (a fallback aggregator, then a
    vote): before each fallback a CombinerFellBack says which call did not decide and why (its
    error: failed, or skipped while its model rests); a failed attempt is kept in
    `other_calls`, and the round records who decided. An attempt that fails after streaming
    text is followed by an AggregateRestarted, so that no reader appends the next attempt's
    text to its broken one."""

    def __init__(self, primary: Combiner, fallbacks: Sequence[tuple[Combiner, DecidedBy]]) -> None:
        self._primary = primary
        self._fallbacks = fallbacks

    async def combine(
        self,
        round_index: int,
        conversation: Sequence[Message],
        candidates: Sequence[CallRecord],
        *,
        stream: bool,
    ) -> AsyncGenerator[CombinerEvent, None]:
        failed: list[CallRecord] = []
        attempts: list[tuple[Combiner, DecidedBy | None]] = [(self._primary, None)]
        attempts.extend(self._fallbacks)
        finished: AggregateFinished | None = None
        for number, (combiner, decided_by) in enumerate(attempts):
            if finished is not None:
                assert decided_by is not None  # every fallback names itself
                yield CombinerFellBack(
                    round=round_index, failed=finished.response, fallback=decided_by
                )
            streamed = False
            async for event in combiner.combine(
                round_index, conversation, candidates, stream=stream
            ):
                if isinstance(event, AggregateFinished):
                    finished = event
                    continue
                if isinstance(event, AggregateRestarted):
                    streamed = False
                elif isinstance(event, AggregateDelta) and event.text:
                    streamed = True
                yield event
            assert finished is not None, f"combiner {number} ended without AggregateFinished"
            if streamed and not finished.response.ok:
                yield AggregateRestarted(round=round_index, failed=finished.response)
            failed.extend(finished.other_calls)
            if finished.response.ok:
                yield finished.model_copy(
                    update={
                        "decided_by": decided_by or finished.decided_by,
                        "other_calls": tuple(failed),
                    }
                )
                return
            failed.append(finished.response)
        assert finished is not None
        yield finished.model_copy(update={"other_calls": tuple(failed[:-1])})


class VoteCombiner:
    """The weighted plurality of the candidates' answers; the consensus is the winning member's
    own text (no model call)."""

    def __init__(self, meter: AgreementMeter) -> None:
        self._meter = meter

    async def combine(
        self,
        round_index: int,
        conversation: Sequence[Message],
        candidates: Sequence[CallRecord],
        *,
        stream: bool,
    ) -> AsyncGenerator[CombinerEvent, None]:
        if not candidates:
            error = CallError(type="no_answers", message="no member answered, nothing to vote on")
            record = CallRecord(model="vote", role="aggregator", error=error)
            yield AggregateFinished(round=round_index, response=record, decided_by="vote")
            return
        winner = self._meter.vote(conversation, candidates)
        if stream:
            yield AggregateDelta(round=round_index, text=winner.text)
        reused = winner.model_copy(update={"usage": Usage(), "latency_s": 0.0})
        yield AggregateFinished(round=round_index, response=reused, decided_by="vote")


class IterationLimit:
    """Stop after the first round plus `iterations` improvement rounds."""

    def __init__(self, iterations: int) -> None:
        self._rounds = iterations + 1

    def stop_reason(self, rounds: Sequence[RoundRecord], usage: Usage) -> StopReason | None:
        return "iterations" if len(rounds) >= self._rounds else None


class BudgetCap:
    """Stop starting new rounds once the known cost reaches the budget."""

    def __init__(self, budget_usd: float) -> None:
        self._budget_usd = budget_usd

    def stop_reason(self, rounds: Sequence[RoundRecord], usage: Usage) -> StopReason | None:
        spent = usage.cost_usd or 0.0
        return "budget" if spent >= self._budget_usd else None


class AgreementStop:
    """Stop once the round's consensus has `threshold` confidence; with `at_least_two`, one
    answer is never enough (see SureAnswerStop)."""

    def __init__(self, threshold: float, *, at_least_two: bool = False) -> None:
        self._threshold = threshold
        self._at_least_two = at_least_two

    def stop_reason(self, rounds: Sequence[RoundRecord], usage: Usage) -> StopReason | None:
        agreement = rounds[-1].agreement if rounds else None
        if agreement is None or agreement.confidence < self._threshold:
            return None
        if self._at_least_two and len(agreement.supporters) < 2:
            return None
        return "agreed"


class SureAnswerStop:
    """Stop after a lone answer the model is at least `threshold` sure of: its mean token
    probability, where the backend reports it (`adaptive`'s first round)."""

    def __init__(self, threshold: float) -> None:
        self._threshold = threshold

    def stop_reason(self, rounds: Sequence[RoundRecord], usage: Usage) -> StopReason | None:
        agreement = rounds[-1].agreement if len(rounds) == 1 else None
        if agreement is None or len(agreement.supporters) != 1:
            return None
        sure = agreement.token_probability
        return "agreed" if sure is not None and sure >= self._threshold else None


class FreeFormStop:
    """Stop once a round's answers are free-form text (an essay, code, an explanation): they
    can be compared by similarity only, which says nothing of which is right; `adaptive` keeps
    the strongest member's answer rather than pay for more of them."""

    def stop_reason(self, rounds: Sequence[RoundRecord], usage: Usage) -> StopReason | None:
        agreement = rounds[-1].agreement if rounds else None
        return "free_form" if agreement is not None and agreement.kind == "free" else None


class ConvergenceStop:
    """Stop once the consensus no longer changes: two consecutive consensus answers are at
    least `threshold` similar (0..1, difflib's ratio over lower-cased words)."""

    def __init__(self, threshold: float) -> None:
        self._threshold = threshold

    def stop_reason(self, rounds: Sequence[RoundRecord], usage: Usage) -> StopReason | None:
        if len(rounds) < 2 or rounds[-1].aggregate is None or rounds[-2].aggregate is None:
            return None
        similarity = text_similarity(rounds[-2].aggregate.text, rounds[-1].aggregate.text)
        return "converged" if similarity >= self._threshold else None
