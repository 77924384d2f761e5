"""`vote`: every member answers; the weighted plurality of their extracted answers wins, and
the consensus is the winning member's own answer (no aggregator call)."""

from __future__ import annotations

from conclave.config import AgreementThreshold, StrategyOptions
from conclave.consensus.steps import AgreementStop, EveryMember, Steps, VoteCombiner
from conclave.consensus.strategies.registry import Strategy, StrategyContext, register_strategy


class VoteOptions(StrategyOptions):
    agreement_threshold: AgreementThreshold = 0.75
    """Stop once the consensus has this confidence (0..1)."""
    show_answers: bool = False
    """Improvement rounds show members every answer of the previous round (anonymised)."""


def vote_steps(options: VoteOptions, context: StrategyContext) -> Steps:
    meter = context.meter(context.panel.members)
    return context.improvement_rounds(
        EveryMember(),
        VoteCombiner(meter),
        meter,
        show_answers=options.show_answers,
        stop_rules=(AgreementStop(options.agreement_threshold),),
    )


VOTE = register_strategy(
    Strategy(
        name="vote",
        summary="every member answers; the weighted plurality of their answers wins",
        options_type=VoteOptions,
        build=vote_steps,
        falls_back=False,
    )
)
