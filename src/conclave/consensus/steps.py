"""The pluggable steps of a consensus run: who answers a round, what they are asked, which
answers are combined, how, and when to stop. The engine calls these; a strategy (see
strategies.py) is a choice of steps, never a second loop."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

from conclave.config import AggregatorSpec
from conclave.consensus.answers import text_similarity
from conclave.consensus.events import AggregateDelta, AggregateFinished, AggregateRestarted
from conclave.consensus.panel import Member
from conclave.consensus.prompts import (
    aggregation_messages,
    anonymise_candidates,
    improvement_conversation,
    peer_answers_conversation,
)
from conclave.consensus.records import call_record, deadline, failed_record
from conclave.consensus.transcript import CallRecord, DecidedBy, RoundRecord, StopReason
from conclave.errors import ProviderError
from conclave.types import Completion, Message, Role, TextDelta, Usage

CombinerEvent = AggregateDelta | AggregateRestarted | AggregateFinished
"""What a combiner yields."""


class MemberSelector(Protocol):
    """Chooses which members answer a round."""

    def select(
        self, round_index: int, members: tuple[Member, ...], history: Sequence[RoundRecord]
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


class EveryMember:
    """Flare's choice: every member answers every round."""

    def select(
        self, round_index: int, members: tuple[Member, ...], history: Sequence[RoundRecord]
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
    the consensus, bounded by `timeout_s`; streamed only when someone reads the pieces."""

    def __init__(
        self, aggregator: Member, spec: AggregatorSpec, *, timeout_s: float, rng: random.Random
    ) -> None:
        self._aggregator = aggregator
        self._spec = spec
        self._timeout_s = timeout_s
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
        label = self._aggregator.label
        started = time.perf_counter()
        completion: Completion | None = None
        try:
            async with deadline(self._timeout_s, label):
                if not stream:
                    completion = await self._aggregator.complete(messages)
                else:
                    async for item in self._aggregator.stream(messages):
                        if isinstance(item, TextDelta):
                            yield AggregateDelta(round=round_index, text=item.text)
                        else:
                            completion = item
        except Exception as exc:  # any failure of a call is that call's
            record = failed_record(label, "aggregator", messages, exc, started)
        else:
            if completion is None:
                ended = ProviderError(f"{label}: the stream ended without a final answer")
                record = failed_record(label, "aggregator", messages, ended, started)
            else:
                latency = time.perf_counter() - started
                record = call_record(label, "aggregator", messages, completion, latency)
        yield AggregateFinished(round=round_index, response=record)


class WithFallbacks:
    """The combiner, and when it fails the fallbacks in order (a fallback aggregator, then a
    vote): a failed attempt is kept in `other_calls`, and the round records who decided. An
    attempt that fails after streaming text is followed by an AggregateRestarted, so that no
    reader appends the next attempt's text to its broken one."""

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
        for combiner, decided_by in attempts:
            streamed = False
            async for event in combiner.combine(
                round_index, conversation, candidates, stream=stream
            ):
                if isinstance(event, AggregateFinished):
                    finished = event
                    continue
                if isinstance(event, AggregateRestarted):
                    streamed = False
                elif event.text:
                    streamed = True
                yield event
            if finished is None:  # pragma: no cover - every combiner ends with one
                continue
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
