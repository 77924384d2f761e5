"""`flare`: every member answers, an LLM aggregator synthesises, improvement rounds refine
(Flare AI Consensus's centralised aggregation)."""

from __future__ import annotations

from conclave.config import StrategyOptions
from conclave.consensus.steps import EveryMember, Steps, ThisRound
from conclave.consensus.strategies.registry import Strategy, StrategyContext, register_strategy


class FlareOptions(StrategyOptions):
    show_answers: bool = False
    """Improvement rounds show members every answer of the previous round (anonymised), not
    only the consensus: Mixture-of-Agents layers, or a debate."""


def flare_steps(options: FlareOptions, context: StrategyContext) -> Steps:
    return Steps(
        selector=EveryMember(),
        prompt=context.improvement_prompt(show_answers=options.show_answers),
        pool=ThisRound(),
        combiner=context.aggregator(),
        stop_rules=context.round_limits(),
        meter=context.meter(context.panel.members),
        max_rounds=context.config.iterations + 1,
    )


FLARE = register_strategy(
    Strategy(
        name="flare",
        summary="every member answers; an aggregator model synthesises; rounds refine",
        options_type=FlareOptions,
        build=flare_steps,
    )
)
