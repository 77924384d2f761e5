"""Ready-made consensus set-ups. `embedded` runs on the local models with no key and no network."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from conclave.config import AggregatorSpec, ConsensusConfig, ModelSpec, load_config
from conclave.consensus.prompts import (
    COMPACT_AGGREGATOR_CONTEXT,
    COMPACT_AGGREGATOR_PROMPT,
    COMPACT_IMPROVEMENT_PROMPT,
)

EMBEDDED_PRESET = "embedded"
UNNAMED = "default"
"""The `name` of a config that gives none."""


def embedded_config() -> ConsensusConfig:
    """`adaptive` over the three embedded packs, weighted by their measured accuracy.

    Qwen2.5-Coder-1.5B answers first. A multiple-choice question asked for the letter only is
    answered by its options' probabilities in one call of one token. A calculation (a number or text
    the question asks to work out) it is less than 0.7 sure of, a recalled text below 0.5 and a
    recalled number below 0.4, are worked out step by step, drawn again and, while the answers
    disagree, put to the two small models, whose weights keep them from outvoting it; letters stop
    at their first answer. A request of several numbered questions is answered part by part. Each
    setting is the one `conclave eval` chose for its kind of question on the development sets (the
    cheapest within one standard error of the most right answers, within 1.5x the 1.5B's time;
    docs/quality.md). Asking a letter again with the options rotated gained too little over the
    letters and the parts together to pass that rule, and the cheap check and confidence-weighted
    votes did not win on sets left out of their choice, so they stay off.
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
        strategy_options={
            "samples": 3,
            "sure_probability": 0.4,
            "sure_by_kind": {"calculation": 0.7, "text": 0.5},
            "reasoning_for": ["number", "text"],
        },
        timeout_s=300.0,
    )


def load_presets(paths: Sequence[Path]) -> list[tuple[str, ConsensusConfig]]:
    """One named config per file, named by its `name` field or else by the file's stem; with
    no file, the embedded preset. The service's presets and `conclave eval`'s set-ups."""
    if not paths:
        config = embedded_config()
        return [(config.name, config)]
    named = []
    for path in paths:
        config = load_config(path)
        named.append((config.name if config.name != UNNAMED else path.stem, config))
    return named
