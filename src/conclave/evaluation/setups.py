"""The set-ups an evaluation compares: every member alone, and every strategy of every config.

A member alone is a one-member panel whose round-0 answer is scored (no aggregator call). A
strategy is a config run whole through `conclave.Consensus`, with `strategy` set when the
installed conclave knows the field; before it does, only `flare` (today's algorithm) exists.
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


def strategies_available() -> tuple[str, ...] | None:
    """None when the config takes any `strategy` (its validation names the bad ones); else the
    only strategy this conclave has."""
    return None if "strategy" in ConsensusConfig.model_fields else (DEFAULT_STRATEGY,)


def with_strategy(config: ConsensusConfig, strategy: str) -> ConsensusConfig:
    """The config set to use `strategy`."""
    if strategies_available() is None:
        return config.with_changes(strategy=strategy)
    if strategy != DEFAULT_STRATEGY:
        raise ConfigError(
            f"strategy {strategy!r} is not available in this conclave: only "
            f"{DEFAULT_STRATEGY!r} (today's aggregate-and-improve algorithm) is"
        )
    return config


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
            config=with_strategy(config, strategy),
            strategy=strategy,
        )
        for name, config in configs
        for strategy in dict.fromkeys(strategies)
    ]
    return (*members, *strategy_setups)


def _member_alone(config: ConsensusConfig, spec: ModelSpec, name: str) -> Setup:
    alone = config.with_changes(
        name=name, models=[spec.model_dump(mode="json")], iterations=0, quorum=1
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
