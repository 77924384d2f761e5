"""The commands agree with each other and with the service: one config is refused (or taken)
by every command alike, `batch` takes the messages HTTP takes, reruns report what the output
holds, and `log show` / `log export` show all the run holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batch.upstream import scripted_upstream, write_config, write_rows
from conclave import cli
from conclave.cli import common
from conclave.errors import ProviderHTTPError
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider

runner = CliRunner()
UNSET_KEY = "CONCLAVE_TEST_KEY_NOBODY_SETS"


def test_config_check_refuses_an_unset_api_key_env_with_the_message_ask_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(UNSET_KEY, raising=False)
    path = tmp_path / "keyed.json"
    member = {"id": "m", "base_url": "http://127.0.0.1:9/v1", "api_key_env": UNSET_KEY}
    path.write_text(json.dumps({"models": [member], "aggregator": [{"model": member}]}))

    checked = runner.invoke(cli.app, ["config", "check", str(path)])
    asked = runner.invoke(cli.app, ["ask", "Hi?", "-c", str(path), "-q"])

    assert asked.exit_code == 1
    assert f"set the environment variable {UNSET_KEY}" in asked.stderr
    assert checked.exit_code == 1
    assert checked.stderr == asked.stderr
    monkeypatch.setenv(UNSET_KEY, "sk-set")
    assert runner.invoke(cli.app, ["config", "check", str(path)]).exit_code == 0


def test_batch_takes_the_developer_role_as_http_does(tmp_path: Path) -> None:
    rows = tmp_path / "in.jsonl"
    messages = [
        {"role": "developer", "content": "Answer briefly."},
        {"role": "user", "content": "Question Q-7?"},
    ]
    rows.write_text(json.dumps({"messages": messages}) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    with scripted_upstream() as upstream:
        config = write_config(tmp_path / "config.json", upstream.server_port)
        result = runner.invoke(cli.app, ["batch", str(rows), "-c", str(config), "-o", str(out)])
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["answer"] == "answer for Q-7"


def test_a_rerun_over_an_output_holding_a_failed_row_counts_it_and_exits_1(
    tmp_path: Path,
) -> None:
    rows = write_rows(tmp_path / "in.jsonl", 3, failing=frozenset({1}))
    out = tmp_path / "out.jsonl"
    with scripted_upstream() as upstream:
        config = write_config(tmp_path / "config.json", upstream.server_port)
        args = ["batch", str(rows), "-c", str(config), "-o", str(out), "-q"]
        first = runner.invoke(cli.app, args)
        again = runner.invoke(cli.app, args)
    assert first.exit_code == 1
    assert "1 failed" in first.stderr
    assert again.exit_code == 1
    assert "0 failed" not in again.stderr
    assert "1 failed" in again.stderr
    assert "--retry-failed" in again.stderr


def test_a_lone_surrogate_in_a_batch_row_names_the_row_not_the_codec(tmp_path: Path) -> None:
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"prompt": "fine"}\n{"prompt": "caf\\ud800 ?"}\n', encoding="utf-8")
    result = runner.invoke(cli.app, ["batch", str(rows), "-o", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 1
    assert "line 2:" in result.stderr
    assert "lone surrogate (U+D800)" in result.stderr
    assert "codec" not in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


@pytest.fixture
def run_with_fallbacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kept run of two rounds where one member and the aggregator fail in each round, so
    that a fallback vote decides; returns its id."""
    provider = FakeProvider(
        {
            "a": FakeModel(default="Paris"),
            "b": FakeModel(default=ProviderHTTPError("b is down", status_code=500)),
            "c": FakeModel(default="Paris."),
            "agg": FakeModel(default=ProviderHTTPError("aggregator is down", status_code=503)),
        }
    )
    monkeypatch.setattr(
        common, "make_registry", lambda: ProviderRegistry(overrides={"local": provider})
    )
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "models": [{"id": "local:a"}, {"id": "local:b"}, {"id": "local:c"}],
                "aggregator": [{"model": {"id": "local:agg"}}],
                "iterations": 1,
            }
        )
    )
    asked = runner.invoke(cli.app, ["ask", "Capital of France?", "-c", str(config), "--json"])
    assert asked.exit_code == 0, asked.output
    run_id: str = json.loads(asked.stdout)["id"]
    return run_id


def test_log_show_and_markdown_export_show_agreement_who_decided_and_every_failed_call(
    run_with_fallbacks: str,
) -> None:
    shown = runner.invoke(cli.app, ["log", "show", run_with_fallbacks])
    exported = runner.invoke(cli.app, ["log", "export", run_with_fallbacks, "-f", "markdown"])
    assert shown.exit_code == exported.exit_code == 0, shown.output
    for text in (shown.stdout, exported.stdout):
        assert "agreement 100%" in text
        assert "confidence 100%" in text
        assert "decided by: fallback vote (the aggregator failed)" in text
        assert text.count("b is down") == 2
        assert text.count("aggregator is down") == 2


def test_log_json_export_holds_agreement_and_who_decided(run_with_fallbacks: str) -> None:
    exported = runner.invoke(cli.app, ["log", "export", run_with_fallbacks])
    assert exported.exit_code == 0, exported.output
    (run,) = json.loads(exported.stdout)
    assert run["agreement"]["confidence"] == 1.0
    assert [round_["decided_by"] for round_ in run["rounds"]] == ["fallback_vote"] * 2
    failed = [
        call["error"]["message"]
        for round_ in run["rounds"]
        for call in (*round_["responses"], *round_["other_calls"])
        if call["error"]
    ]
    assert sorted(failed) == ["aggregator is down"] * 2 + ["b is down"] * 2


def test_a_lone_surrogate_in_a_carried_field_names_the_field(tmp_path: Path) -> None:
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"prompt": "fine", "tags": ["ok", "\\ud83d"]}\n', encoding="utf-8")
    result = runner.invoke(cli.app, ["batch", str(rows), "-o", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 1
    assert "line 1: field 'tags': a lone surrogate (U+D83D)" in result.stderr
