"""The set-ups an evaluation compares: every member alone, and every strategy of every config.

A member alone is a one-member panel whose round-0 answer is scored (a vote of one: no
aggregator call). A strategy is a config with its `strategy` set. Both run through
`conclave.Consensus`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Literal

from conclave.config import ConsensusConfig, ModelSpec
from conclave.errors import ConfigError
from conclave.types import Frozen

SetupKind = Literal["member", "strategy"]
DEFAULT_STRATEGY = "flare"


class Setup(Frozen):
    """One way of answering the questions."""

    name: str
    kind: SetupKind
    config: ConsensusConfig
    strategy: str | None = None
    member: ModelSpec | None = None
    """For a member alone: the model."""

    @property
    def fingerprint(self) -> str:
        """Changes whenever the set-up would answer differently; results of another
        fingerprint are not reused on resume."""
        shown = {
            "kind": self.kind,
            "strategy": self.strategy,
            "config": self.config.model_dump(mode="json", exclude={"name"}),
        }
        return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:16]


def plan_setups(
    configs: Sequence[tuple[str, ConsensusConfig]], strategies: Sequence[str]
) -> tuple[Setup, ...]:
    """Every distinct member alone (first), then every (config, strategy) pair.

    `configs` are (name, config) pairs; with one config the strategies are named alone
    ("flare"), with several as "config/flare".
    """
    if not configs:
        raise ConfigError("no config to evaluate: give at least one --config")
    if not strategies:
        raise ConfigError("no strategy to evaluate: give at least one --strategy")
    names = [name for name, _ in configs]
    if len(set(names)) != len(names):
        raise ConfigError(f"two configs share a name ({', '.join(names)}); rename one")
    members: list[Setup] = []
    seen: set[str] = set()
    for _, config in configs:
        for spec in config.models:
            identity = spec.model_dump_json()
            if identity in seen:
                continue
            seen.add(identity)
            members.append(_member_alone(config, spec, _member_name(spec, members)))
    strategy_setups = [
        Setup(
            name=strategy if len(configs) == 1 else f"{name}/{strategy}",
            kind="strategy",
            config=config.with_changes(strategy=strategy),
            strategy=strategy,
        )
        for name, config in configs
        for strategy in dict.fromkeys(strategies)
    ]
    return (*members, *strategy_setups)


def _member_alone(config: ConsensusConfig, spec: ModelSpec, name: str) -> Setup:
    # A vote among one member is its own answer, with no further call.
    alone = config.with_changes(
        name=name, models=[spec.model_dump(mode="json")], iterations=0, quorum=1, strategy="vote"
    )
    return Setup(name=name, kind="member", config=alone, member=spec)


def _member_name(spec: ModelSpec, earlier: Sequence[Setup]) -> str:
    name = spec.display_name
    taken = {setup.name for setup in earlier}
    if name not in taken:
        return name
    number = 2
    while f"{name} #{number}" in taken:
        number += 1
    return f"{name} #{number}"
