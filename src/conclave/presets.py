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
    """SmolLM2-135M and Qwen2.5-Coder-0.5B answer; Qwen 0.5B aggregates; one improvement round.

    Token limits keep the first consensus well under a minute on two cores; low temperatures
    and short prompts suit models this small (the README gives the measured time and answers).
    """
    return ConsensusConfig(
        name=EMBEDDED_PRESET,
        models=(
            ModelSpec(id="local:smollm2-135m", max_tokens=160, temperature=0.2),
            ModelSpec(id="local:qwen2.5-0.5b", max_tokens=160, temperature=0.2),
        ),
        aggregator=(
            AggregatorSpec(
                model=ModelSpec(id="local:qwen2.5-0.5b", max_tokens=200, temperature=0.0),
                aggregator_context=COMPACT_AGGREGATOR_CONTEXT,
                aggregator_prompt=COMPACT_AGGREGATOR_PROMPT,
            ),
        ),
        improvement_prompt=COMPACT_IMPROVEMENT_PROMPT,
        iterations=1,
        timeout_s=300.0,
    )
