"""`sample`: self-consistency. Several samples of the strongest member (the first at its own
settings, the others drawn warmer with seeds of their own) answer, and their answers are
voted."""

from __future__ import annotations

from conclave.config import AgreementThreshold, Samples, StrategyOptions
from conclave.consensus.steps import AgreementStop, FixedMembers, Steps, VoteCombiner
from conclave.consensus.strategies.draws import sampled, strongest_first
from conclave.consensus.strategies.registry import Strategy, StrategyContext, register_strategy


class SampleOptions(StrategyOptions):
    samples: Samples = 5
    """How many answers to draw from the strongest member."""
    agreement_threshold: AgreementThreshold = 0.75
    """Stop once the consensus has this confidence (0..1)."""
    show_answers: bool = False
    """Improvement rounds show the samples every answer of the previous round (anonymised)."""


def sample_steps(options: SampleOptions, context: StrategyContext) -> Steps:
    samples = sampled(strongest_first(context.panel.members)[0], options.samples)
    meter = context.meter(samples)
    return context.improvement_rounds(
        FixedMembers(samples),
        VoteCombiner(meter),
        meter,
        show_answers=options.show_answers,
        stop_rules=(AgreementStop(options.agreement_threshold),),
    )


SAMPLE = register_strategy(
    Strategy(
        name="sample",
        summary="several samples of the strongest member, voted (self-consistency)",
        options_type=SampleOptions,
        build=sample_steps,
        falls_back=False,
    )
)
