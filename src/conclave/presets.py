"""Ready-made consensus set-ups. `embedded` runs on the local models with no key and no network."""

from __future__ import annotations

from conclave.config import AggregatorSpec, ConsensusConfig, ModelSpec

EMBEDDED_PRESET = "embedded"


def embedded_config() -> ConsensusConfig:
    """SmolLM2-135M and Qwen2.5-Coder-0.5B answer; Qwen 0.5B aggregates; one improvement round.

    Token limits are set so that the first consensus arrives in well under a minute on two
    cores (see the README for the measured time).
    """
    return ConsensusConfig(
        name=EMBEDDED_PRESET,
        models=(
            ModelSpec(id="local:smollm2-135m", max_tokens=160, temperature=0.5),
            ModelSpec(id="local:qwen2.5-0.5b", max_tokens=160, temperature=0.5),
        ),
        aggregator=(
            AggregatorSpec(
                model=ModelSpec(id="local:qwen2.5-0.5b", max_tokens=200, temperature=0.2)
            ),
        ),
        iterations=1,
        timeout_s=300.0,
    )
