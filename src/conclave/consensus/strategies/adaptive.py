"""`adaptive`: spend calls only where the answers are unsure.

The strongest member answers alone. A multiple-choice question asked for the letter only is
answered by its options' probabilities in one call (`option_probabilities`), and while unsure it
is asked again with the options in other orders (`reorderings`), the probabilities averaged
back. Then, while the answers are still unsure (below the threshold of their kind of question,
`sure_probability` / `sure_by_kind`: the winning letter's share, or a lone answer's mean token
probability), the strongest member may check its candidate answer cheaply (`check`: "is it
correct?", read from the probabilities of Yes and No); if it is still unsure it is asked to
reason step by step, then for more reasoning draws (self-consistency), then the other members
are asked. Every answer is voted, optionally weighted by its own confidence
(`confidence_weighted`, as CISC); it stops as soon as the answers agree or the members left
could not change the vote. A free-form answer (an essay, code) is the strongest member's own: a
vote cannot tell which of several is right.

The kind of question sets the threshold and whether an unsure answer is worked out
(`reasoning_for`): a letter, a recalled number or text, a calculation (a number or text whose
question asks to compute it, `conclave.consensus.kinds`), several parts. A request of several
numbered questions is answered part by part (`by_parts`): each part goes through these stages
as a question of its own, in its own form (`strategies.by_parts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from conclave.config import AgreementThreshold, Samples, StrategyOptions, SureProbability
from conclave.consensus.agreement import AgreementMeter
from conclave.consensus.choices import choice_scorer
from conclave.consensus.kinds import QuestionKind, kinds_covering
from conclave.consensus.panel import Member
from conclave.consensus.steps import (
    AgreementStop,
    Combiner,
    EveryRound,
    FreeFormStop,
    Steps,
    StopRule,
    VoteCombiner,
)
from conclave.consensus.strategies.by_parts import PartByPart, is_request_of_parts
from conclave.consensus.strategies.draws import drawn, strongest_first
from conclave.consensus.strategies.registry import Strategy, StrategyContext, register_strategy
from conclave.consensus.transcript import Agreement, RoundRecord, StopReason
from conclave.consensus.verification import CheckPassed, WithoutChecks, check_messages, checker
from conclave.types import Message, Usage

REASONING_PROMPT = (
    "Before you answer, work it out step by step in a few short lines. Then write your final "
    'answer on the last line as "Answer: ...", in the form the question asks for.'
)
"""What is added to the conversation once the first answer was not sure enough."""

REASONING_MAX_TOKENS = 320
"""The least room a reasoning answer gets (a member's own max_tokens if larger)."""

Stage = Literal["parts", "first", "reorder", "check", "reasoning", "draws", "others"]
CHEAP_STAGES: frozenset[Stage] = frozenset({"first", "reorder"})
"""The stages a sure answer ends at: the strongest member's first answer and its reorderings."""


class AdaptiveOptions(StrategyOptions):
    samples: Samples = 5
    """The answers of the strongest member at most: its first, its reasoning, and
    `samples - 2` more reasoning draws."""
    agreement_threshold: AgreementThreshold = 0.75
    """Stop once the consensus has this confidence (0..1) and two members agree."""
    sure_probability: SureProbability = 0.5
    """The first answer ends the run when the model is at least this sure of it: its mean
    token probability, or for a multiple-choice letter read from the options' probabilities,
    that letter's share (embedded models report both; OpenAI-compatible servers with
    `logprobs` the first)."""
    sure_by_kind: dict[QuestionKind, SureProbability] = Field(default_factory=dict)
    """`sure_probability` for some kinds of question (letter, number, text, parts,
    calculation), as `conclave eval` chose them; a calculation with no threshold of its own
    takes its answer's (number, text)."""
    option_probabilities: bool = True
    """Answer a multiple-choice question asked for the letter only by the options'
    probabilities as the first token, in one call of one token (embedded members)."""
    reorderings: int = Field(default=0, ge=0, le=9)
    """While such a letter is unsure, ask again this many times with the options rotated, and
    add the probabilities up (position bias averaged away)."""
    reasoning_for: tuple[QuestionKind, ...] = ("letter", "number", "text", "parts")
    """The kinds of question whose unsure answers go on to the check, reasoning and the other
    members; the others stop after the strongest member's first answer (and its reorderings),
    where reasoning costs more time than it gains. `number` and `text` cover the calculations
    answered so; `calculation` alone reasons on them and not on recalled numbers and texts."""
    by_parts: bool = True
    """Answer a request of several numbered questions part by part, each part a question of
    its own in its own form; else as one question."""
    check: bool = False
    """While unsure, ask the strongest member whether its answer is correct before it reasons
    (one token: the probabilities of Yes and No)."""
    check_probability: SureProbability = 0.5
    """The share of Yes at which a checked answer ends the run."""
    confidence_weighted: bool = False
    """Each vote counts its member's weight times its own confidence (CISC)."""

    def sure_for(self, answer_kind: str, calculation: bool = False) -> float:
        """The threshold of a kind of question: its own, else its answer kind's, else
        `sure_probability`."""
        for kind in kinds_covering(answer_kind, calculation):
            for known, threshold in self.sure_by_kind.items():
                if known == kind:
                    return threshold
        return self.sure_probability

    def reasons_on(self, answer_kind: str, calculation: bool = False) -> bool:
        """Whether an unsure answer to this kind of question is worked out
        (`reasoning_for`)."""
        kinds = kinds_covering(answer_kind, calculation)
        return any(kind in self.reasoning_for for kind in kinds)


def adaptive_steps(options: AdaptiveOptions, context: StrategyContext) -> Steps:
    nested = context.nested if options.by_parts else None
    by_parts = nested is not None
    escalation = Escalation(strongest_first(context.panel.members), options, by_parts=by_parts)
    weights = {member.label: member.spec.weight for member in escalation.everyone}
    meter = AgreementMeter(
        weights, context.similarity, confidence_weighted=options.confidence_weighted
    )
    later = frozenset(escalation.stages) - CHEAP_STAGES - {"check"}
    combiner: Combiner = VoteCombiner(meter)
    if nested is not None:
        config, panel = context.config, context.panel
        combiner = PartByPart(combiner, lambda: nested(config, panel))
    return Steps(
        selector=escalation,
        prompt=escalation,
        pool=WithoutChecks(EveryRound()),
        combiner=combiner,
        stop_rules=(
            PlanEnded(escalation),
            SureStop(escalation, options),
            CheckPassed(options.check_probability),
            AtStages(
                escalation, later, AgreementStop(options.agreement_threshold, at_least_two=True)
            ),
            AtStages(escalation, later, VoteSettled(escalation)),
            FreeFormStop(),
            *context.budget(),
        ),
        meter=meter,
        max_rounds=len(escalation.stages),
    )


def reasoning_room(member: Member) -> int:
    """The max_tokens of a reasoning answer: the member's own, at least REASONING_MAX_TOKENS."""
    return max(member.spec.max_tokens or 0, REASONING_MAX_TOKENS)


class Escalation:
    """`adaptive`'s stages, each asked only while the answers so far are unsure and only where
    it fits the question: the strongest member alone (asking for token probabilities where its
    provider always reports them, and for a multiple-choice letter its options'
    probabilities); the same question with the options rotated (a letter read from
    probabilities); a check of the answer; the strongest member reasoning step by step; more
    reasoning draws of it; every other member. It chooses each round's members and what they
    are sent."""

    def __init__(
        self, strongest: tuple[Member, ...], options: AdaptiveOptions, *, by_parts: bool = False
    ) -> None:
        self._options = options
        self._by_parts = by_parts
        plain = strongest[0]
        if plain.provider.capabilities.token_probabilities and not plain.spec.logprobs:
            plain = plain.variant(plain.label, logprobs=True)
        scores = options.option_probabilities and plain.spec.provider == "local"
        first: Member = choice_scorer(plain) if scores else plain
        room = reasoning_room(plain)
        draws = options.samples - 2
        reasoning = plain.variant(f"{plain.label} #2", max_tokens=room)
        more = tuple(drawn(plain, number, max_tokens=room) for number in range(3, 3 + draws))
        first_rotated = 3 + draws
        rotated: tuple[Member, ...] = ()
        if scores:
            rotated = tuple(
                choice_scorer(
                    plain, shift=shift, label=f"{plain.label} #{first_rotated + shift - 1}"
                )
                for shift in range(1, options.reorderings + 1)
            )
        stages: list[tuple[Stage, tuple[Member, ...]]] = [
            ("first", (first,)),
            ("reorder", rotated),
            ("check", (checker(plain),) if options.check else ()),
            ("reasoning", (reasoning,)),
            ("draws", more),
            ("others", strongest[1:]),
        ]
        self._stages = tuple((stage, group) for stage, group in stages if group)

    @property
    def stages(self) -> tuple[Stage, ...]:
        """Every stage that may be asked, in order."""
        return tuple(stage for stage, _ in self._stages)

    @property
    def everyone(self) -> tuple[Member, ...]:
        """Every member and draw that may be asked."""
        return tuple(member for _, group in self._stages for member in group)

    def plan(self, history: Sequence[RoundRecord]) -> tuple[tuple[Stage, tuple[Member, ...]], ...]:
        """The stages this question goes through: a request of several parts answered part by
        part in one round that asks no member; else the rotations only for a letter read from
        the options' probabilities, the check only for a short answer, and nothing past the
        cheap stages for a kind that does not reason (`reasoning_for`)."""
        if not history:
            return self._stages
        first = history[0]
        if not first.responses:
            return (("parts", ()),)
        scored = any(r.choice_probabilities for r in first.answered)
        agreement = first.agreement
        kind = agreement.kind if agreement is not None else "free"
        calculation = agreement is not None and agreement.calculation
        reasons = kind == "free" or self._options.reasons_on(kind, calculation)
        return tuple(
            (stage, group)
            for stage, group in self._stages
            if (stage != "reorder" or scored)
            and (stage != "check" or kind != "free")
            and (stage in CHEAP_STAGES or reasons)
        )

    def stage(self, history: Sequence[RoundRecord], index: int) -> Stage | None:
        """The stage of round `index`, None past the last."""
        plan = self.plan(history)
        return plan[index][0] if index < len(plan) else None

    def weight_after(self, history: Sequence[RoundRecord]) -> float:
        """The total weight of the answers still to come after the rounds in `history` (a
        check is no answer)."""
        plan = self.plan(history)[len(history) :]
        return sum(m.spec.weight for stage, group in plan if stage != "check" for m in group)

    def select(
        self,
        round_index: int,
        members: tuple[Member, ...],
        history: Sequence[RoundRecord],
        conversation: Sequence[Message],
    ) -> tuple[Member, ...]:
        if round_index == 0 and self._by_parts and is_request_of_parts(conversation):
            return ()  # the combiner answers it part by part
        plan = self.plan(history)
        return plan[min(round_index, len(plan) - 1)][1]

    def messages(
        self, conversation: Sequence[Message], history: Sequence[RoundRecord]
    ) -> tuple[Message, ...]:
        """The first answer and the rotations are asked the conversation itself; a check is
        shown the answer so far; later rounds are asked to reason step by step first and end
        on an "Answer: ..." line (REASONING_PROMPT)."""
        stage = self.stage(history, len(history))
        if stage in CHEAP_STAGES or stage is None:
            return tuple(conversation)
        if stage == "check":
            return check_messages(conversation, history[-1].consensus)
        return (*conversation, Message(role="user", content=REASONING_PROMPT))


def _last_agreement(rounds: Sequence[RoundRecord]) -> Agreement | None:
    """The agreement of the latest round that measured one (a check's round keeps the answers
    of the one before)."""
    return next((r.agreement for r in reversed(rounds) if r.agreement is not None), None)


class PlanEnded:
    """Stop once every stage this question goes through was asked."""

    def __init__(self, escalation: Escalation) -> None:
        self._escalation = escalation

    def stop_reason(self, rounds: Sequence[RoundRecord], usage: Usage) -> StopReason | None:
        return "iterations" if self._escalation.stage(rounds, len(rounds)) is None else None


class SureStop:
    """Stop at the strongest member's first answer (or its reorderings) once it is sure enough
    for its kind of question: for a letter read from the options' probabilities, the winning
    letter's share; else a lone answer's mean token probability."""

    def __init__(self, escalation: Escalation, options: AdaptiveOptions) -> None:
        self._escalation = escalation
        self._options = options

    def stop_reason(self, rounds: Sequence[RoundRecord], usage: Usage) -> StopReason | None:
        if not rounds or self._escalation.stage(rounds, len(rounds) - 1) not in CHEAP_STAGES:
            return None
        agreement = rounds[-1].agreement
        if agreement is None or agreement.answer is None:
            return None
        threshold = self._options.sure_for(agreement.kind, agreement.calculation)
        scored = any(r.choice_probabilities for r in rounds[0].answered)
        if scored:
            return "agreed" if agreement.support >= threshold else None
        sure = agreement.token_probability
        lone = len(agreement.supporters) == 1
        return "agreed" if lone and sure is not None and sure >= threshold else None


class AtStages:
    """A stop rule that applies only after rounds of some stages (agreement among answers means
    little before the strongest member has reasoned)."""

    def __init__(self, escalation: Escalation, stages: frozenset[Stage], rule: StopRule) -> None:
        self._escalation = escalation
        self._stages = stages
        self._rule = rule

    def stop_reason(self, rounds: Sequence[RoundRecord], usage: Usage) -> StopReason | None:
        if not rounds or self._escalation.stage(rounds, len(rounds) - 1) not in self._stages:
            return None
        return self._rule.stop_reason(rounds, usage)


class VoteSettled:
    """Stop once the members still to be asked could not change the vote: the leading
    answer's weight exceeds the runner-up's by more than all of theirs together."""

    def __init__(self, escalation: Escalation) -> None:
        self._escalation = escalation

    def stop_reason(self, rounds: Sequence[RoundRecord], usage: Usage) -> StopReason | None:
        agreement = _last_agreement(rounds)
        if agreement is None or not agreement.clusters or agreement.kind == "free":
            return None
        weights = sorted((cluster.weight for cluster in agreement.clusters), reverse=True)
        margin = weights[0] - (weights[1] if len(weights) > 1 else 0.0)
        return "settled" if margin > self._escalation.weight_after(rounds) else None


ADAPTIVE = register_strategy(
    Strategy(
        name="adaptive",
        summary="the strongest member first; more answers only while they are unsure",
        options_type=AdaptiveOptions,
        build=adaptive_steps,
        falls_back=False,
    )
)
