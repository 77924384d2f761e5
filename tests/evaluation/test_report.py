"""The report: per set-up and data set, against the best member, as JSON, table and page."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from conclave.evaluation.dataset import load_dataset
from conclave.evaluation.evaluate import EvaluationRun
from conclave.evaluation.outputs import write_outputs
from conclave.evaluation.render import report_html, report_table
from conclave.evaluation.report import ALL_SETS, Report, build_report
from conclave.evaluation.scoring import Scorers
from conclave.evaluation.setups import plan_setups

from .fakes import fake_models, fake_registry, panel_config, write_capitals


async def _report(tmp_path: Path) -> Report:
    first = load_dataset(write_capitals(tmp_path / "south.jsonl", ["Peru", "Chile", "Kenya"]))
    second = load_dataset(write_capitals(tmp_path / "north.jsonl", ["Japan"]))
    config = panel_config()
    setups = plan_setups([(config.name, config)], ["flare"])
    results = await EvaluationRun(out_dir=tmp_path / "out").run(
        [first, second], setups, Scorers(), fake_registry(fake_models())
    )
    return build_report([first, second], setups, results)


async def test_each_set_up_is_scored_per_data_set_and_overall(tmp_path: Path) -> None:
    report = await _report(tmp_path)
    assert [(d.name, d.rows) for d in report.datasets] == [("south", 3), ("north", 1)]
    assert report.best_member == {
        "south": "local:strong",
        "north": "local:strong",
        ALL_SETS: "local:strong",
    }
    overall = report.score("flare", ALL_SETS)
    assert overall is not None
    assert (overall.rows, overall.correct, overall.accuracy) == (4, 4, 1.0)
    assert 0.0 < overall.ci_low < 1.0 == overall.ci_high
    assert overall.vs_best_member is not None
    assert (overall.vs_best_member.wins, overall.vs_best_member.losses) == (0, 0)
    weak = report.score("local:weak", "south")
    assert weak is not None
    assert weak.vs_best_member is not None
    assert (weak.vs_best_member.losses, weak.vs_best_member.difference) == (3, -1.0)
    assert weak.vs_best_member.p_value == 0.25
    best = report.score("local:strong", "south")
    assert best is not None
    assert best.vs_best_member is None
    assert overall.tokens_per_question > best.tokens_per_question > 0
    assert overall.cost_usd is None  # the fakes report no cost
    assert [(w.model, w.accuracy) for w in report.member_weights] == [
        ("local:strong", 1.0),
        ("local:weak", 0.0),
    ]


async def test_the_report_is_written_as_json_page_and_weights(tmp_path: Path) -> None:
    report = await _report(tmp_path)
    config = panel_config()
    written = write_outputs(
        report,
        tmp_path / "out",
        plan_setups([(config.name, config)], ["flare"]),
        [(config.name, config)],
    )
    names = {path.name for path in written}
    assert {"report.json", "report.html", "weights.json"} <= names
    assert Report.model_validate_json((tmp_path / "out" / "report.json").read_text()) == report
    weights = json.loads((tmp_path / "out" / "weights.json").read_text())
    assert weights["members"][0] == {
        "model": "local:strong",
        "setup": "local:strong",
        "accuracy": 1.0,
        "rows": 4,
    }


async def test_the_page_is_self_contained_with_a_chart_per_data_set(tmp_path: Path) -> None:
    page = report_html(await _report(tmp_path))
    assert page.count("<svg") == 3  # south, north, all
    assert "<script" not in page
    assert "https://" not in page
    assert "src=" not in page
    assert "local:strong (best member)" in page


async def test_the_table_shows_every_set_up_on_every_set(tmp_path: Path) -> None:
    console = Console(width=250, record=True)
    console.print(report_table(await _report(tmp_path)))
    text = console.export_text()
    assert text.count("local:weak") == 3
    assert "local:strong (best member)" in text
    assert "-100.0 pts (+0/-3) p=0.250" in text
