"""Evaluation runs: every set-up on every row, resumable, a killed run loses nothing finished."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from conclave.batch.journal import JournalError
from conclave.errors import ConfigError
from conclave.evaluation.dataset import Dataset, load_dataset
from conclave.evaluation.evaluate import EvaluationRun, RowResult
from conclave.evaluation.scoring import Scorers
from conclave.evaluation.setups import Setup, parse_variation, plan_setups
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FunctionModel
from conclave.types import Message, SamplingOptions

from .fakes import (
    fake_models,
    fake_registry,
    knows_capitals,
    panel_config,
    write_capitals,
)


class KilledError(BaseException):
    """Stands for the process being killed in the middle of a row: like KeyboardInterrupt, not
    an Exception, so it is no member's failed call but the end of the run."""


def _setups(max_tokens: int = 64) -> tuple[Setup, ...]:
    config = panel_config(max_tokens=max_tokens)
    return plan_setups([(config.name, config)], ["flare"])


async def _run(
    out_dir: Path, dataset: Dataset, registry: ProviderRegistry, setups: tuple[Setup, ...]
) -> tuple[list[RowResult], list[tuple[int, int]]]:
    starts: list[tuple[int, int]] = []
    results = await EvaluationRun(out_dir=out_dir, concurrency=1).run(
        [dataset],
        setups,
        Scorers(),
        registry,
        on_start=lambda todo, kept: starts.append((todo, kept)),
    )
    return results, starts


def test_members_alone_come_first_then_each_strategy() -> None:
    setups = _setups()
    assert [(s.name, s.kind) for s in setups] == [
        ("local:strong", "member"),
        ("local:weak", "member"),
        ("flare", "strategy"),
    ]
    assert setups[0].config.models == (panel_config().models[0],)
    assert setups[0].config.iterations == 0


def test_variants_are_every_combination_of_the_values_each_with_its_options() -> None:
    config = panel_config()
    variations = [
        parse_variation('sure_by_kind={"letter": 0.4, "number": 0.6},{}'),
        parse_variation("reorderings=0,2"),
    ]
    setups = plan_setups([(config.name, config)], ["adaptive"], variations)
    strategies = [s for s in setups if s.kind == "strategy"]
    assert [s.name for s in strategies] == [
        "adaptive[sure_by_kind={letter:0.4,number:0.6},reorderings=0]",
        "adaptive[sure_by_kind={letter:0.4,number:0.6},reorderings=2]",
        "adaptive[sure_by_kind={},reorderings=0]",
        "adaptive[sure_by_kind={},reorderings=2]",
    ]
    assert strategies[1].config.strategy_options == {
        "sure_by_kind": {"letter": 0.4, "number": 0.6},
        "reorderings": 2,
    }
    assert len({s.fingerprint for s in strategies}) == 4
    blocks = [parse_variation('strategy_options={"reorderings": 2},{"check": true}')]
    union = plan_setups([(config.name, config)], ["adaptive"], blocks)
    assert [s.config.strategy_options for s in union if s.kind == "strategy"] == [
        {"reorderings": 2},
        {"check": True},
    ]
    only = plan_setups([(config.name, config)], ["vote"], members_alone=["local:weak"])
    assert [s.name for s in only] == ["local:weak", "vote"]


def test_a_strategy_that_does_not_exist_is_a_clear_error() -> None:
    config = panel_config()
    with pytest.raises(ConfigError, match="no-such-strategy"):
        plan_setups([(config.name, config)], ["no-such-strategy"])


async def test_every_set_up_answers_every_row_and_is_scored(tmp_path: Path) -> None:
    dataset = load_dataset(write_capitals(tmp_path / "capitals.jsonl"))
    results, starts = await _run(tmp_path / "out", dataset, fake_registry(fake_models()), _setups())
    assert starts == [(12, 0)]
    by_setup = {
        s: [r.correct for r in results if r.setup == s]
        for s in ("local:strong", "local:weak", "flare")
    }
    assert by_setup == {"local:strong": [True] * 4, "local:weak": [False] * 4, "flare": [True] * 4}
    alone = next(r for r in results if r.setup == "local:strong")
    assert alone.calls == 1  # the member alone: no aggregator call
    consensus = next(r for r in results if r.setup == "flare")
    assert consensus.calls == 6  # 2 members + aggregator, two rounds
    assert consensus.completion_tokens > 0


async def test_a_killed_run_keeps_what_finished_and_a_rerun_does_only_the_rest(
    tmp_path: Path,
) -> None:
    dataset = load_dataset(write_capitals(tmp_path / "capitals.jsonl"))
    out_dir = tmp_path / "out"

    def dies_on_kenya(messages: Sequence[Message], options: SamplingOptions) -> str:
        if "Kenya" in messages[-1].content:
            raise KilledError
        return knows_capitals(messages, options)

    models = fake_models()
    models["strong"] = FunctionModel(dies_on_kenya)
    with pytest.raises(KilledError):
        await _run(out_dir, dataset, fake_registry(models), _setups())
    kept = (out_dir / "results.jsonl").read_text().splitlines()
    assert len(kept) == 4  # Peru and Japan, each member alone (the members run first)
    with (out_dir / "results.jsonl").open("a") as file:
        file.write('{"dataset": "capitals", "row_id": "ken')  # a line cut short by the kill

    fresh = fake_models()
    results, starts = await _run(out_dir, dataset, fake_registry(fresh), _setups())
    assert starts == [(8, 4)]
    assert len(results) == 12
    # alone: Kenya and Chile only; in flare every row's round 1 (round 0 is the alone call,
    # from the cache)
    assert len(fresh["weak"].history) == 6
    again, starts = await _run(out_dir, dataset, fake_registry(fake_models()), _setups())
    assert starts == [(0, 12)]
    assert sorted(r.key for r in again) == sorted(r.key for r in results)


async def test_an_unreadable_result_before_the_last_line_stops_the_run_naming_it(
    tmp_path: Path,
) -> None:
    dataset = load_dataset(write_capitals(tmp_path / "capitals.jsonl", ["Peru"]))
    out_dir = tmp_path / "out"
    await _run(out_dir, dataset, fake_registry(fake_models()), _setups())
    results = out_dir / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join([lines[0], "garbage\n", *lines[1:]]))
    with pytest.raises(JournalError, match=r"results\.jsonl line 2 is not a result"):
        await _run(out_dir, dataset, fake_registry(fake_models()), _setups())


async def test_a_changed_set_up_is_run_again_but_the_others_are_kept(tmp_path: Path) -> None:
    dataset = load_dataset(write_capitals(tmp_path / "capitals.jsonl"))
    out_dir = tmp_path / "out"
    await _run(out_dir, dataset, fake_registry(fake_models()), _setups())
    _, starts = await _run(out_dir, dataset, fake_registry(fake_models()), _setups(max_tokens=32))
    assert starts == [(12, 0)]  # every set-up uses the changed max_tokens
    edited = write_capitals(tmp_path / "capitals.jsonl", ["Peru", "Japan", "Kenya"])
    _, starts = await _run(
        out_dir, load_dataset(edited), fake_registry(fake_models()), _setups(max_tokens=32)
    )
    assert starts == [(0, 9)]


async def test_a_failed_consensus_is_scored_wrong_and_kept(tmp_path: Path) -> None:
    dataset = load_dataset(write_capitals(tmp_path / "capitals.jsonl", ["Peru"]))
    models = fake_models()
    # empty answers fail; with no member answer there is no consensus, not even a fallback
    models["strong"] = models["weak"] = FunctionModel(lambda messages, options: "")
    results, _ = await _run(tmp_path / "out", dataset, fake_registry(models), _setups())
    failed = next(r for r in results if r.setup == "flare")
    assert not failed.correct
    assert failed.error is not None
    assert "members answered" in failed.error
    assert failed.answer == ""
