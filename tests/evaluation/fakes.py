"""Fake panels for the evaluation tests: a member that knows the capitals, one that always
says Sydney, and an aggregator that knows them too; all on the shipped FakeProvider."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from conclave.config import AggregatorSpec, ConsensusConfig, ModelSpec
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeProvider, FunctionModel
from conclave.types import Message, SamplingOptions

CAPITALS = {"Peru": "Lima", "Japan": "Tokyo", "Kenya": "Nairobi", "Chile": "Santiago"}


def write_capitals(path: Path, countries: Sequence[str] = tuple(CAPITALS)) -> Path:
    rows = [
        {
            "id": country.lower(),
            "question": f"What is the capital of {country}?",
            "answers": [CAPITALS[country]],
        }
        for country in countries
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def knows_capitals(messages: Sequence[Message], options: SamplingOptions) -> str:
    text = " ".join(m.content for m in messages)
    for country, capital in CAPITALS.items():
        if country in text:
            return f"The capital is {capital}."
    return "I do not know."


def always_sydney(messages: Sequence[Message], options: SamplingOptions) -> str:
    return "Sydney"


def fake_models() -> dict[str, FunctionModel]:
    return {
        "strong": FunctionModel(knows_capitals),
        "weak": FunctionModel(always_sydney),
        "agg": FunctionModel(knows_capitals),
    }


def fake_registry(models: dict[str, FunctionModel]) -> ProviderRegistry:
    provider = FakeProvider(dict(models))
    return ProviderRegistry(overrides={"local": provider})


def panel_config(*, temperature: float = 0.0, max_tokens: int = 64) -> ConsensusConfig:
    def spec(name: str) -> ModelSpec:
        return ModelSpec(id=f"local:{name}", temperature=temperature, max_tokens=max_tokens)

    return ConsensusConfig(
        name="fake-panel",
        models=(spec("strong"), spec("weak")),
        aggregator=(AggregatorSpec(model=spec("agg")),),
        iterations=1,
    )
