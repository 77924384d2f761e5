"""The set-ups an evaluation compares: every member alone, and every strategy of every config.

A member alone is a one-member panel whose round-0 answer is scored (a vote of one: no
aggregator call). A strategy is a config with its `strategy` set; with variants
(`--vary sure_probability=0.3,0.5`), one set-up per combination of the values, named
`adaptive[sure_probability=0.3]`. Both run through `conclave.Consensus`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from typing import Literal

from conclave.config import ConsensusConfig, ModelSpec, strategy_options_type
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


Variation = tuple[str, tuple[object, ...]]
"""A field and the values it takes, one set-up each."""


def parse_variation(text: str) -> Variation:
    """`FIELD=V1,V2,...` (`--vary`): a strategy option or a config field and its values, each
    read as JSON where it is JSON (0.5, true, {"letter": 0.4}) and as text otherwise. FIELD
    `strategy_options` takes whole option blocks, each a set-up of its own (a grid that is no
    product: `strategy_options={"reorderings":2},{"check":true}`)."""
    name, equals, values = text.partition("=")
    if not equals or not name.strip() or not values.strip():
        raise ConfigError(
            f"--vary {text!r}: expected FIELD=V1,V2 (a strategy option or a config field and "
            "its values), e.g. sure_probability=0.3,0.5"
        )
    return name.strip(), tuple(_value(value) for value in split_values(values))


def split_values(text: str) -> list[str]:
    """Commas split values, except inside braces or brackets ({"a": 1, "b": 2})."""
    values, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            values.append(text[start:index])
            start = index + 1
    values.append(text[start:])
    return [value.strip() for value in values if value.strip()]


def _value(text: str) -> object:
    try:
        value: object = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value


def plan_setups(
    configs: Sequence[tuple[str, ConsensusConfig]],
    strategies: Sequence[str],
    variations: Sequence[Variation] = (),
    *,
    members_alone: Sequence[str] | None = None,
) -> tuple[Setup, ...]:
    """Every distinct member alone (first), then every (config, strategy) pair, in each of the
    combinations of `variations` (a field of the strategy's options block, else of the config).

    `configs` are (name, config) pairs; with one config the strategies are named alone
    ("flare"), with several as "config/flare"; a variant adds its values ("flare[iterations=2]").
    `members_alone` names the members to run alone (by id or label; default: every one), when
    the others' accuracy alone is known or not wanted.
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
            if members_alone is None or {spec.id, spec.display_name} & set(members_alone):
                members.append(_member_alone(config, spec, _member_name(spec, members)))
    if members_alone is not None:
        named = {name for setup in members for name in (setup.name, _member_id(setup))}
        missing = [name for name in members_alone if name not in named]
        if missing:
            raise ConfigError(
                f"--member {', '.join(missing)}: no such model in the configs "
                f"({', '.join(spec.id for _, config in configs for spec in config.models)})"
            )
    strategy_setups = [
        Setup(
            name=(strategy if len(configs) == 1 else f"{name}/{strategy}") + _label(combination),
            kind="strategy",
            config=_varied(config.with_changes(strategy=strategy), combination),
            strategy=strategy,
        )
        for name, config in configs
        for strategy in dict.fromkeys(strategies)
        for combination in _combinations(variations)
    ]
    return (*members, *strategy_setups)


def _combinations(variations: Sequence[Variation]) -> list[tuple[tuple[str, object], ...]]:
    fields = [name for name, _ in variations]
    return [
        tuple(zip(fields, values, strict=True))
        for values in itertools.product(*(values for _, values in variations))
    ]


def _label(combination: Sequence[tuple[str, object]]) -> str:
    """`[field=value,...]`, each value as compact JSON without quotes."""
    if not combination:
        return ""
    values = (json.dumps(value, separators=(",", ":")).replace('"', "") for _, value in combination)
    return (
        "["
        + ",".join(f"{name}={value}" for (name, _), value in zip(combination, values, strict=True))
        + "]"
    )


def _varied(config: ConsensusConfig, combination: Sequence[tuple[str, object]]) -> ConsensusConfig:
    """`config` with each field of `combination` set: a field of its strategy's options block
    there, else a config field; ConfigError naming a field that is neither."""
    options_fields = strategy_options_type(config.strategy).model_fields
    options = dict(config.strategy_options)
    changes: dict[str, object] = {}
    for name, value in combination:
        if name == "strategy_options" and isinstance(value, dict):
            unknown = sorted(set(value) - set(options_fields))
            if unknown:
                raise ConfigError(
                    f"--vary strategy_options: {', '.join(unknown)} is not an option of "
                    f"strategy {config.strategy!r} ({', '.join(options_fields)})"
                )
            options.update(value)
        elif name in options_fields:
            options[name] = value  # type: ignore[assignment]
        elif name in ConsensusConfig.model_fields and name != "strategy":
            changes[name] = value
        else:
            raise ConfigError(
                f"--vary {name}: not an option of strategy {config.strategy!r} "
                f"({', '.join(options_fields)}) nor a config field"
            )
    if not combination:
        return config
    return config.with_changes(strategy_options=options, **changes)


def _member_id(setup: Setup) -> str:
    return setup.member.id if setup.member is not None else setup.name


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
