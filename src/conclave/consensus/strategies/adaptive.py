"""`adaptive`: spend calls only where the answers are unsure.

The strongest member answers alone; while the answers are unsure (its token probability is
below `sure_probability`, or the backend reports none, or the answers so far disagree) it is
asked to reason step by step, then for more reasoning draws (self-consistency), then the other
members are asked; it stops as soon as the answers agree, and every answer is voted. A
free-form answer (an essay, code) is the strongest member's own: a vote cannot tell which of
several is right.
"""

from __future__ import annotations

from collections.abc import Sequence

from conclave.config import AgreementThreshold, Samples, StrategyOptions, SureProbability
from conclave.consensus.panel import Member
from conclave.consensus.steps import (
    AgreementStop,
    EveryRound,
    FreeFormStop,
    IterationLimit,
    Steps,
    SureAnswerStop,
    VoteCombiner,
)
from conclave.consensus.strategies.draws import drawn, strongest_first
from conclave.consensus.strategies.registry import Strategy, StrategyContext, register_strategy
from conclave.consensus.transcript import RoundRecord, StopReason
from conclave.types import Message, Usage

REASONING_PROMPT = (
    "Before you answer, work it out step by step in a few short lines. Then write your final "
    'answer on the last line as "Answer: ...", in the form the question asks for.'
)
"""What is added to the conversation once the first answer was not sure enough."""

REASONING_MAX_TOKENS = 320
"""The least room a reasoning answer gets (a member's own max_tokens if larger)."""


class AdaptiveOptions(StrategyOptions):
    samples: Samples = 5
    """The answers of the strongest member at most: its first, its reasoning, and
    `samples - 2` more reasoning draws."""
    agreement_threshold: AgreementThreshold = 0.75
    """Stop once the consensus has this confidence (0..1) and two members agree."""
    sure_probability: SureProbability = 0.5
    """The first answer ends the run when the model's mean token probability for it is at
    least this (embedded models report it; OpenAI-compatible servers with `logprobs`)."""


def adaptive_steps(options: AdaptiveOptions, context: StrategyContext) -> Steps:
    escalation = Escalation(strongest_first(context.panel.members), options.samples - 2)
    meter = context.meter(escalation.everyone)
    return Steps(
        selector=escalation,
        prompt=ReasonAfterFirstRound(),
        pool=EveryRound(),
        combiner=VoteCombiner(meter),
        stop_rules=(
            IterationLimit(escalation.rounds - 1),
            SureAnswerStop(options.sure_probability),
            AgreementStop(options.agreement_threshold, at_least_two=True),
            VoteSettled(escalation),
            FreeFormStop(),
            *context.budget(),
        ),
        meter=meter,
        max_rounds=escalation.rounds,
    )


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


ADAPTIVE = register_strategy(
    Strategy(
        name="adaptive",
        summary="the strongest member first; more answers only while they are unsure",
        options_type=AdaptiveOptions,
        build=adaptive_steps,
        falls_back=False,
    )
)
