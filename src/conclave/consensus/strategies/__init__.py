"""Named strategies, each a choice of the engine's steps (never a second loop), one module each:

- `flare`: every member answers, an LLM aggregator synthesises, improvement rounds refine.
- `vote`: every member answers; the weighted plurality of their extracted answers wins.
- `rank`: members rank each other's anonymised answers; the aggregator writes from the best.
- `sample`: several samples of the strongest member (self-consistency), voted.
- `adaptive`: the strongest member first; more answers only while they are unsure.
- `swarm`: an orchestrator plans steps for agents; they run in parallel; it writes the answer.

`registry` holds the list. A strategy of one's own is one module that defines its options
model and its steps and calls `register_strategy`; once imported, configs may name it.
Every strategy keeps a consensus when its combiner fails: the configured fallback aggregator
writes it, or else the answers are voted.
"""

# The built-in strategies register themselves on import, in the order they are listed.
from conclave.consensus.strategies import flare, vote, rank, sample, adaptive, swarm  # noqa: I001
from conclave.consensus.strategies.registry import (
    Extension,
    ExtensionBuilder,
    Strategy,
    StrategyContext,
    build_steps,
    get_strategy,
    register_extension,
    register_strategy,
    registered_strategies,
    strategy_names,
)

BUILT_IN = (
    flare.FLARE,
    vote.VOTE,
    rank.RANK,
    sample.SAMPLE,
    adaptive.ADAPTIVE,
    swarm.SWARM_STRATEGY,
)
"""The strategies that ship with conclave, in the order they are listed."""

__all__ = [
    "BUILT_IN",
    "Extension",
    "ExtensionBuilder",
    "Strategy",
    "StrategyContext",
    "build_steps",
    "get_strategy",
    "register_extension",
    "register_strategy",
    "registered_strategies",
    "strategy_names",
]
