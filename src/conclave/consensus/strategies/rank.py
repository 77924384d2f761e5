"""`rank`: llm-council's peer review. Every member answers; every author ranks the others'
anonymised answers (shuffled per reviewer, its own left out); a Borda count weighted by the
reviewers' weights orders them; the aggregator, as chairman, writes from the best."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncGenerator, Mapping, Sequence

from conclave.config import AgreementThreshold, StrategyOptions
from conclave.consensus.calls import ModelCalls
from conclave.consensus.events import AggregateFinished
from conclave.consensus.panel import Member
from conclave.consensus.steps import (
    AgreementStop,
    CombinerEvent,
    EveryMember,
    LLMAggregator,
    Steps,
)
from conclave.consensus.strategies.registry import Strategy, StrategyContext, register_strategy
from conclave.consensus.transcript import CallRecord
from conclave.types import Message

RANKED_FOR_CHAIRMAN = 2
"""How many of the best-ranked answers the chairman writes from."""

REVIEW_PROMPT = (
    "Below are answers from other assistants to the user's latest message. Rank them from the "
    "most to the least correct. Reply with one line only, of the form\n"
    "RANKING: 2, 1, 3"
)


class RankOptions(StrategyOptions):
    agreement_threshold: AgreementThreshold = 0.75
    """Stop once the consensus has this confidence (0..1)."""
    show_answers: bool = False
    """Improvement rounds show members every answer of the previous round (anonymised)."""


def rank_steps(options: RankOptions, context: StrategyContext) -> Steps:
    members = context.panel.members
    meter = context.meter(members)
    weights = {member.label: member.spec.weight for member in members}
    reviewers = {member.label: member for member in members}
    chairman = context.aggregator()
    ranking = PeerRanking(reviewers, chairman, weights, context.calls, context.rng)
    return context.improvement_rounds(
        EveryMember(),
        ranking,
        meter,
        show_answers=options.show_answers,
        stop_rules=(AgreementStop(options.agreement_threshold),),
    )


class PeerRanking:
    """llm-council's peer review: every author ranks the others' answers (anonymised, shuffled
    per reviewer, its own left out), a Borda count weighted by the reviewers' weights orders
    them, and the chairman writes the consensus from the best RANKED_FOR_CHAIRMAN."""

    def __init__(
        self,
        reviewers: Mapping[str, Member],
        chairman: LLMAggregator,
        weights: Mapping[str, float],
        calls: ModelCalls,
        rng: random.Random,
    ) -> None:
        self._reviewers = reviewers
        self._chairman = chairman
        self._weights = weights
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
        reviews: tuple[CallRecord, ...] = ()
        best = tuple(candidates)
        if len(candidates) >= 3:
            reviews, points = await self._reviews(conversation, candidates)
            order = sorted(range(len(candidates)), key=lambda i: (-points[i], i))
            best = tuple(candidates[i] for i in order[:RANKED_FOR_CHAIRMAN])
        async for event in self._chairman.combine(round_index, conversation, best, stream=stream):
            if isinstance(event, AggregateFinished):
                yield event.model_copy(update={"decided_by": "rank", "other_calls": reviews})
            else:
                yield event

    async def _reviews(
        self, conversation: Sequence[Message], candidates: Sequence[CallRecord]
    ) -> tuple[tuple[CallRecord, ...], list[float]]:
        jobs = []
        shown_orders = []
        for author in candidates:
            reviewer = self._reviewers.get(author.model)
            if reviewer is None:
                continue
            others = [i for i, c in enumerate(candidates) if c is not author]
            self._rng.shuffle(others)
            shown_orders.append((reviewer, others))
            jobs.append(self._review(reviewer, conversation, [candidates[i] for i in others]))
        reviews = tuple(await asyncio.gather(*jobs))
        points = [0.0] * len(candidates)
        for review, (reviewer, shown) in zip(reviews, shown_orders, strict=True):
            if not review.ok:
                continue
            ranking = parse_ranking(review.text, len(shown))
            weight = self._weights.get(reviewer.label, reviewer.spec.weight)
            for place, number in enumerate(ranking):
                points[shown[number - 1]] += weight * borda_points(place, len(shown))
        return reviews, points

    async def _review(
        self, reviewer: Member, conversation: Sequence[Message], shown: Sequence[CallRecord]
    ) -> CallRecord:
        answers = "\n".join(
            f"<response {number}>\n{record.text.strip()}\n</response {number}>"
            for number, record in enumerate(shown, start=1)
        )
        messages = (
            *conversation,
            Message(role="user", content=f"{REVIEW_PROMPT}\n\n{answers}"),
        )
        label = f"{reviewer.label} (reviewer)"
        return await self._calls.ask(reviewer, "reviewer", messages, label=label)


def parse_ranking(text: str, count: int) -> list[int]:
    """The response numbers (1..count) a review ranks, best first: the numbers after "RANKING:",
    else every "response N" in the order written; repeats and numbers out of range dropped."""
    line = re.search(r"RANKING\s*:?\s*([^\n]*)", text, re.IGNORECASE)
    found = re.findall(r"\d+", line.group(1)) if line else []
    if not found:
        found = re.findall(r"response\s*(\d+)", text, re.IGNORECASE)
    ranking: list[int] = []
    for number in (int(n) for n in found):
        if 1 <= number <= count and number not in ranking:
            ranking.append(number)
    return ranking


def borda_points(place: int, count: int) -> float:
    """Borda points of the `place`-th (0-based) of `count` ranked answers, scaled to 0..1."""
    return 1.0 if count <= 1 else (count - 1 - place) / (count - 1)


RANK = register_strategy(
    Strategy(
        name="rank",
        summary="members rank each other's answers; the aggregator writes from the best",
        options_type=RankOptions,
        build=rank_steps,
    )
)
