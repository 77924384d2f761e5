"""Ready-made consensus set-ups. `embedded` runs on the local models with no key and no network."""

from __future__ import annotations

from conclave.config import AggregatorSpec, ConsensusConfig, ModelSpec
from conclave.consensus.prompts import (
    COMPACT_AGGREGATOR_CONTEXT,
    COMPACT_AGGREGATOR_PROMPT,
    COMPACT_IMPROVEMENT_PROMPT,
)

EMBEDDED_PRESET = "embedded"


def embedded_config() -> ConsensusConfig:
    """`adaptive` over the three embedded packs, weighted by their measured accuracy.

    Qwen2.5-Coder-1.5B answers first; a short answer it is sure of (by its token
    probabilities) is the consensus at the cost of one call; a number, or an answer it is
    unsure of, is worked out step by step, drawn again and, while the answers disagree, put
    to the two small models, whose weights (their accuracy on 300 development questions, see
    the README's Evaluation) keep them from outvoting it. This default was chosen by
    `conclave eval`: it beat the old default (the two small models, Flare's aggregation) by
    about 40 points and is as good or better than the 1.5B alone.
    """
    return ConsensusConfig(
        name=EMBEDDED_PRESET,
        models=(
            ModelSpec(id="local:qwen2.5-1.5b", max_tokens=512, temperature=0.0, weight=0.57),
            ModelSpec(id="local:qwen2.5-0.5b", max_tokens=512, temperature=0.0, weight=0.27),
            ModelSpec(id="local:smollm2-135m", max_tokens=512, temperature=0.0, weight=0.23),
        ),
        aggregator=(
            AggregatorSpec(
                model=ModelSpec(id="local:qwen2.5-1.5b", max_tokens=512, temperature=0.0),
                aggregator_context=COMPACT_AGGREGATOR_CONTEXT,
                aggregator_prompt=COMPACT_AGGREGATOR_PROMPT,
            ),
        ),
        improvement_prompt=COMPACT_IMPROVEMENT_PROMPT,
        iterations=1,
        strategy="adaptive",
        strategy_options={"samples": 3},
        timeout_s=300.0,
    )
