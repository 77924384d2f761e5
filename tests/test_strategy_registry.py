"""The strategy registry: one list for configs, the engine and the server; a strategy of one's
own added in one module; each strategy's options one typed block."""

from __future__ import annotations

import pytest

import toy_strategy
from conclave.config import parse_config
from conclave.consensus.strategies import get_strategy, register_strategy, strategy_names
from conclave.consensus.strategies.adaptive import AdaptiveOptions
from conclave.consensus.strategies.sample import SampleOptions
from conclave.errors import ConfigError
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.server.catalog import build_catalog
from conclave.session import Consensus
from test_engine import echo, make_config

BASE: dict[str, object] = {
    "models": [{"id": "a"}, {"id": "b"}],
    "aggregator": [{"model": {"id": "g"}}],
}


def fake_registry(fakes: dict[str, FakeModel | FunctionModel]) -> ProviderRegistry:
    return ProviderRegistry(overrides={"openrouter": FakeProvider(fakes)})


def test_the_built_in_strategies_are_listed_first_in_their_order() -> None:
    assert strategy_names()[:5] == ("flare", "vote", "rank", "sample", "adaptive")


async def test_a_strategy_registered_in_one_module_runs_through_config_and_consensus() -> None:
    config = make_config(strategy="toy", strategy_options={"prefix": "P"})
    fakes: dict[str, FakeModel | FunctionModel] = {n: echo(n) for n in ("a", "b", "c", "agg")}
    async with Consensus(config, registry=fake_registry(fakes)) as consensus:
        transcript = await consensus.ask("What is the capital of France?")
    assert transcript.answer == "P: a says Paris"
    assert [len(fakes[name].history) for name in ("a", "b", "c", "agg")] == [1, 0, 0, 0]
    assert "toy" in strategy_names()
    assert get_strategy("toy") is toy_strategy.TOY


def test_a_registered_strategys_options_are_checked_by_its_own_model() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**BASE, "strategy": "toy", "strategy_options": {"rounds": 9}}, source="c")
    assert (
        "$.strategy_options: options of strategy 'toy': rounds: "
        "Input should be less than or equal to 3"
    ) in str(caught.value)


def test_the_server_offers_a_registered_strategy_as_a_preset_variant() -> None:
    config = make_config()
    catalog = build_catalog([("p", config)], fake_registry({}))
    variant, base = catalog.resolve("p:toy"), catalog.resolve("p")
    assert variant.config.strategy == "toy"
    assert variant.engine.panel is base.engine.panel
    assert variant.engine.health is base.engine.health  # one upstream, one breaker


def test_registering_another_strategy_under_a_taken_name_is_refused() -> None:
    other = toy_strategy.TOY.__class__(
        name="vote",
        summary="not the vote",
        options_type=toy_strategy.ToyOptions,
        build=toy_strategy.toy_steps,
    )
    with pytest.raises(ValueError, match="already registered"):
        register_strategy(other)
    assert register_strategy(toy_strategy.TOY) is toy_strategy.TOY


def test_an_unknown_strategy_names_the_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**BASE, "strategy": "voet"}, source="c")
    assert (
        "$.strategy: unknown strategy 'voet'; choose one of: flare, vote, rank, sample, adaptive"
    ) in str(caught.value)
    with pytest.raises(ConfigError, match="unknown strategy 'voet'"):
        get_strategy("voet")


def test_flat_option_fields_of_earlier_configs_still_set_the_options() -> None:
    config = parse_config({**BASE, "strategy": "adaptive", "samples": 3, "sure_probability": 0.6})
    assert config.options == AdaptiveOptions(samples=3, sure_probability=0.6)


def test_the_options_block_sets_the_chosen_strategys_options() -> None:
    config = parse_config({**BASE, "strategy": "sample", "strategy_options": {"samples": 7}})
    assert config.options == SampleOptions(samples=7)
    assert parse_config(BASE).options.model_dump() == {"show_answers": False}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"strategy": "sample", "strategy_options": {"samples": 1}},
            "$.strategy_options: options of strategy 'sample': samples: "
            "Input should be greater than or equal to 2",
        ),
        (
            {"strategy": "flare", "strategy_options": {"samples": 3}},
            "$.strategy_options: options of strategy 'flare': samples: "
            "Extra inputs are not permitted",
        ),
        (
            {"strategy": "sample", "samples": 3, "strategy_options": {"samples": 4}},
            "samples is given twice, as 3 and as strategy_options.samples 4; keep one",
        ),
        ({"samples": 1}, "$.samples: Input should be greater than or equal to 2 (found 1)"),
    ],
)  # fmt: skip
def test_bad_options_name_the_strategy_the_option_and_the_rule(
    data: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**BASE, **data}, source="c")
    assert expected in str(caught.value)


def test_switching_strategy_keeps_the_options_the_new_one_has_and_the_flat_fields() -> None:
    config = parse_config(
        {
            **BASE,
            "strategy": "sample",
            "show_answers": True,
            "strategy_options": {"samples": 7, "agreement_threshold": 0.9},
        }
    )
    vote = config.with_changes(strategy="vote")
    assert vote.strategy_options == {"agreement_threshold": 0.9}
    assert vote.options.model_dump() == {"agreement_threshold": 0.9, "show_answers": True}
    flat = parse_config({**BASE, "samples": 3}).with_changes(strategy="adaptive")
    assert isinstance(flat.options, AdaptiveOptions)
    assert flat.options.samples == 3
