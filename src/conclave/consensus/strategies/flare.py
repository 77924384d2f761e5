"""`flare`: every member answers, an LLM aggregator synthesises, improvement rounds refine
(Flare AI Consensus's centralised aggregation)."""

from __future__ import annotations

from conclave.config import StrategyOptions
from conclave.consensus.steps import EveryMember, Steps
from conclave.consensus.strategies.registry import Strategy, StrategyContext, register_strategy


class FlareOptions(StrategyOptions):
    show_answers: bool = False
    """Improvement rounds show members every answer of the previous round (anonymised), not
    only the consensus: Mixture-of-Agents layers, or a debate."""


def flare_steps(options: FlareOptions, context: StrategyContext) -> Steps:
    return context.improvement_rounds(
        EveryMember(),
        context.aggregator(),
        context.meter(context.panel.members),
        show_answers=options.show_answers,
    )


FLARE = register_strategy(
    Strategy(
        name="flare",
        summary="every member answers; an aggregator model synthesises; rounds refine",
        options_type=FlareOptions,
        build=flare_steps,
    )
)
