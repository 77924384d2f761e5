"""Named strategies, each a choice of the engine's steps (never a second loop).

- `flare`: every member answers, an LLM aggregator synthesises, improvement rounds refine.
- `vote`: every member answers; the weighted plurality of their extracted answers wins, and
  the consensus is the winning member's own answer.
- `rank`: every member ranks the others' anonymised answers (shuffled per reviewer, its own
  left out); a Borda count orders them; the aggregator, as chairman, writes from the best.
- `sample`: several samples of the strongest member (self-consistency), voted.
- `adaptive`: the strongest member answers alone; while the answers are unsure (its token
  probability is below `sure_probability`, or the backend reports none, or the answers so far
  disagree) it is asked to reason step by step, then for more reasoning
  draws (self-consistency), then the other members are asked; it stops as soon as the
  answers agree, and every answer is voted. A free-form answer (an essay, code) is the
  strongest member's own: a vote cannot tell which of several is right.

Every strategy keeps a consensus when its combiner fails: the configured fallback aggregator
writes it, or else the answers are voted.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass

from conclave.config import ConsensusConfig
from conclave.consensus.agreement import AgreementMeter, Similarity
from conclave.consensus.embeddings import default_similarity
from conclave.consensus.events import AggregateDelta, AggregateFinished
from conclave.consensus.panel import Member, Panel
from conclave.consensus.records import call_record, deadline, failed_record
from conclave.consensus.steps import (
    AgreementStop,
    BudgetCap,
    CandidatePool,
    Combiner,
    CombinerEvent,
    ConsensusPrompt,
    ConvergenceStop,
    EveryMember,
    EveryRound,
    FreeFormStop,
    IterationLimit,
    LLMAggregator,
    MemberSelector,
    RoundPrompt,
    StopRule,
    SureAnswerStop,
    ThisRound,
    WithFallbacks,
)
from conclave.consensus.transcript import (
    CallError,
    CallRecord,
    DecidedBy,
    RoundRecord,
    StopReason,
)
from conclave.errors import ProviderError
from conclave.types import Message, Usage

SAMPLE_TEMPERATURE = 0.7
"""The least temperature of the extra samples of `sample`; the first keeps the member's own."""

RANKED_FOR_CHAIRMAN = 2
"""How many of the best-ranked answers the chairman of `rank` writes from."""

REASONING_PROMPT = (
    "Before you answer, work it out step by step in a few short lines. Then write your final "
    'answer on the last line as "Answer: ...", in the form the question asks for.'
)
"""What `adaptive` adds to the conversation once the first answer was not sure enough."""

REASONING_MAX_TOKENS = 320
"""The least room a reasoning answer gets (a member's own max_tokens if larger)."""

REVIEW_PROMPT = (
    "Below are answers from other assistants to the user's latest message. Rank them from the "
    "most to the least correct. Reply with one line only, of the form\n"
    "RANKING: 2, 1, 3"
)


@dataclass(frozen=True)
class Steps:
    """The engine's steps for one strategy, and the most rounds they can take."""

    selector: MemberSelector
    prompt: RoundPrompt
    pool: CandidatePool
    combiner: Combiner
    stop_rules: tuple[StopRule, ...]
    meter: AgreementMeter
    max_rounds: int


def build_steps(
    config: ConsensusConfig,
    panel: Panel,
    *,
    rng: random.Random,
    similarity: Similarity | None = None,
) -> Steps:
    """The steps of `config.strategy` for this panel."""
    strongest = strongest_first(panel.members)
    members: tuple[Member, ...] = panel.members
    if config.strategy == "sample":
        members = sampled(strongest[0], config.samples)
    escalation = Escalation(strongest, config.samples - 2)
    if config.strategy == "adaptive":
        members = escalation.everyone
    weights = {member.label: member.spec.weight for member in members}
    meter = AgreementMeter(weights, similarity or default_similarity())
    vote = VoteCombiner(meter)
    aggregator = LLMAggregator(
        panel.aggregator,
        config.aggregator_spec,
        timeout_s=config.aggregator_spec.model.timeout_s or config.timeout_s,
        rng=rng,
    )
    improvement = ConsensusPrompt(
        config.aggregated_prompt_type,
        config.improvement_prompt,
        show_answers=config.show_answers,
        rng=rng,
    )
    budget: tuple[StopRule, ...] = (
        (BudgetCap(config.budget_usd),) if config.budget_usd is not None else ()
    )
    rounds = config.iterations + 1
    combiner: Combiner
    if config.strategy == "adaptive":
        return Steps(
            selector=escalation,
            prompt=ReasonAfterFirstRound(),
            pool=EveryRound(),
            combiner=vote,
            stop_rules=(
                IterationLimit(escalation.rounds - 1),
                SureAnswerStop(config.sure_probability),
                AgreementStop(config.agreement_threshold, at_least_two=True),
                VoteSettled(escalation),
                FreeFormStop(),
                *budget,
            ),
            meter=meter,
            max_rounds=escalation.rounds,
        )
    stop_rules: list[StopRule] = [IterationLimit(config.iterations), *budget]
    if config.convergence_threshold is not None:
        stop_rules.append(ConvergenceStop(config.convergence_threshold))
    if config.strategy == "flare":
        combiner = aggregator
    else:
        stop_rules.append(AgreementStop(config.agreement_threshold))
        if config.strategy == "rank":
            reviewers = {member.label: member for member in panel.members}
            combiner = PeerRanking(reviewers, aggregator, weights, config.timeout_s, rng)
        else:
            combiner = vote
    return Steps(
        selector=FixedMembers(members) if config.strategy == "sample" else EveryMember(),
        prompt=improvement,
        pool=ThisRound(),
        combiner=_with_fallbacks(config, panel, combiner, vote, rng),
        stop_rules=tuple(stop_rules),
        meter=meter,
        max_rounds=rounds,
    )


def _with_fallbacks(
    config: ConsensusConfig,
    panel: Panel,
    combiner: Combiner,
    vote: VoteCombiner,
    rng: random.Random,
) -> Combiner:
    fallbacks: list[tuple[Combiner, DecidedBy]] = []
    if panel.fallback is not None and not isinstance(combiner, VoteCombiner):
        spec = panel.fallback.spec
        fallback_spec = config.aggregator_spec.model_copy(update={"model": spec})
        timeout_s = spec.timeout_s or config.timeout_s
        aggregator = LLMAggregator(panel.fallback, fallback_spec, timeout_s=timeout_s, rng=rng)
        fallbacks.append((aggregator, "fallback_aggregator"))
    if not isinstance(combiner, VoteCombiner):
        fallbacks.append((vote, "fallback_vote"))
    return WithFallbacks(combiner, fallbacks) if fallbacks else combiner


def strongest_first(members: Sequence[Member]) -> tuple[Member, ...]:
    """The members by weight, heaviest first; equal weights keep the config's order."""
    return tuple(sorted(members, key=lambda member: -member.spec.weight))


def sampled(member: Member, count: int) -> tuple[Member, ...]:
    """`count` draws of one member: the first with its own settings, the others drawn (see
    `drawn`)."""
    first = member.variant(f"{member.label} #1")
    return (first, *(drawn(member, number) for number in range(2, count + 1)))


def drawn(member: Member, number: int, **spec_changes: object) -> Member:
    """Draw `number` of a member, labelled "<member> #<number>": at a temperature of at least
    SAMPLE_TEMPERATURE, with a seed of its own."""
    return member.variant(
        f"{member.label} #{number}",
        temperature=max(member.spec.temperature, SAMPLE_TEMPERATURE),
        seed=(member.spec.seed or 0) + number,
        **spec_changes,
    )


class FixedMembers:
    """The same chosen members every round (the samples of `sample`)."""

    def __init__(self, members: tuple[Member, ...]) -> None:
        self._members = members

    def select(
        self, round_index: int, members: tuple[Member, ...], history: Sequence[RoundRecord]
    ) -> tuple[Member, ...]:
        return self._members


def reasoning_room(member: Member) -> int:
    """The max_tokens of a reasoning answer: the member's own, at least REASONING_MAX_TOKENS."""
    return max(member.spec.max_tokens or 0, REASONING_MAX_TOKENS)


class Escalation:
    """`adaptive`'s rounds, each asked only while the answers so far are unsure: the strongest
    member alone (asking for token probabilities where the backend is embedded, so that a sure
    answer ends the run at one call); the same member reasoning step by step, at its own
    settings; `draws` more reasoning draws of it (self-consistency); every other member."""

    def __init__(self, strongest: tuple[Member, ...], draws: int) -> None:
        first = strongest[0]
        if first.provider.name == "local" and not first.spec.logprobs:
            first = first.variant(first.label, logprobs=True)
        room = reasoning_room(first)
        reasoning = first.variant(f"{first.label} #2", max_tokens=room)
        more = tuple(drawn(first, number, max_tokens=room) for number in range(3, 3 + draws))
        groups = [(first,), (reasoning,), more, strongest[1:]]
        self._rounds = tuple(group for group in groups if group)

    @property
    def everyone(self) -> tuple[Member, ...]:
        """Every member and draw that may be asked."""
        return tuple(member for group in self._rounds for member in group)

    @property
    def rounds(self) -> int:
        return len(self._rounds)

    def weight_after(self, rounds_done: int) -> float:
        """The total weight of the members still to be asked after `rounds_done` rounds."""
        return sum(member.spec.weight for group in self._rounds[rounds_done:] for member in group)

    def select(
        self, round_index: int, members: tuple[Member, ...], history: Sequence[RoundRecord]
    ) -> tuple[Member, ...]:
        return self._rounds[min(round_index, len(self._rounds) - 1)]


class VoteSettled:
    """Stop once the members still to be asked could not change the vote: the leading
    answer's weight exceeds the runner-up's by more than all of theirs together."""

    def __init__(self, escalation: Escalation) -> None:
        self._escalation = escalation

    def stop_reason(self, rounds: Sequence[RoundRecord], usage: Usage) -> StopReason | None:
        agreement = rounds[-1].agreement if rounds else None
        if agreement is None or not agreement.clusters or agreement.kind == "free":
            return None
        weights = sorted((cluster.weight for cluster in agreement.clusters), reverse=True)
        margin = weights[0] - (weights[1] if len(weights) > 1 else 0.0)
        return "settled" if margin > self._escalation.weight_after(len(rounds)) else None


class ReasonAfterFirstRound:
    """The first round is asked the conversation itself; later rounds are asked to reason
    step by step first and end on an "Answer: ..." line (REASONING_PROMPT)."""

    def messages(
        self, conversation: Sequence[Message], history: Sequence[RoundRecord]
    ) -> tuple[Message, ...]:
        if not history:
            return tuple(conversation)
        return (*conversation, Message(role="user", content=REASONING_PROMPT))


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


class PeerRanking:
    """llm-council's peer review: every author ranks the others' answers (anonymised, shuffled
    per reviewer, its own left out), a Borda count weighted by the reviewers' weights orders
    them, and the chairman writes the consensus from the best RANKED_FOR_CHAIRMAN."""

    def __init__(
        self,
        reviewers: Mapping[str, Member],
        chairman: LLMAggregator,
        weights: Mapping[str, float],
        timeout_s: float,
        rng: random.Random,
    ) -> None:
        self._reviewers = reviewers
        self._chairman = chairman
        self._weights = weights
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
        started = time.perf_counter()
        try:
            async with deadline(reviewer.spec.timeout_s or self._timeout_s, label):
                completion = await reviewer.complete(messages)
        except ProviderError as exc:
            return failed_record(label, "reviewer", messages, exc, started)
        return call_record(label, "reviewer", messages, completion, time.perf_counter() - started)


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
