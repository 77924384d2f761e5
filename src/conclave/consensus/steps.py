"""The pluggable steps of a consensus run: who answers a round, how candidates are combined,
when to stop. The engine calls these; a new strategy replaces one step, not the loop."""

from __future__ import annotations

import difflib
import random
import re
import time
from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

from conclave.config import AggregatorSpec
from conclave.consensus.events import AggregateDelta, AggregateFinished
from conclave.consensus.panel import Member
from conclave.consensus.prompts import aggregation_messages, anonymise_candidates
from conclave.consensus.records import call_record, deadline, failed_record
from conclave.consensus.transcript import CallRecord, RoundRecord, StopReason
from conclave.errors import ProviderError
from conclave.types import Completion, Message, TextDelta, Usage


class MemberSelector(Protocol):
    """Chooses which members answer a round."""

    def select(
        self, round_index: int, members: tuple[Member, ...], history: Sequence[RoundRecord]
    ) -> tuple[Member, ...]: ...


class Combiner(Protocol):
    """Turns a round's answers into one consensus.

    Yields AggregateDelta pieces as the consensus is produced (only when `stream` is true), then
    exactly one AggregateFinished.
    """

    def combine(
        self,
        round_index: int,
        conversation: Sequence[Message],
        candidates: Sequence[CallRecord],
        *,
        stream: bool,
    ) -> AsyncGenerator[AggregateDelta | AggregateFinished, None]: ...


class StopRule(Protocol):
    """Says why the run should stop after the rounds so far, or None to go on."""

    def stop_reason(self, rounds: Sequence[RoundRecord], usage: Usage) -> StopReason | None: ...


class EveryMember:
    """Flare's choice: every member answers every round."""

    def select(
        self, round_index: int, members: tuple[Member, ...], history: Sequence[RoundRecord]
    ) -> tuple[Member, ...]:
        return members


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
    ) -> AsyncGenerator[AggregateDelta | AggregateFinished, None]:
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


def text_similarity(first: str, second: str) -> float:
    """How alike two answers read, from 0 to 1, ignoring case, punctuation and spacing."""
    return difflib.SequenceMatcher(None, _words(first), _words(second), autojunk=False).ratio()


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())
