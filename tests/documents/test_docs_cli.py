"""`conclave docs ...` and `conclave ask --docs`, through Typer's runner, with the collections
under a temporary CONCLAVE_HOME and fake models behind the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conclave import cli
from conclave.cli import common
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeProvider, FunctionModel
from test_grounding_runs import FACTS, TRAIN_QUESTION, panel_member

runner = CliRunner()


@pytest.fixture
def facts(tmp_path: Path) -> Path:
    folder = tmp_path / "facts"
    folder.mkdir()
    for name, text in FACTS.items():
        (folder / name).write_text(text, "utf-8")
    return folder


@pytest.fixture
def embedded_fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, FunctionModel]:
    """The embedded preset's models, answering from the passages and judging support."""
    models = {
        name: FunctionModel(panel_member)
        for name in ("smollm2-135m", "qwen2.5-0.5b", "qwen2.5-1.5b")
    }
    provider = FakeProvider(dict(models))
    monkeypatch.setattr(
        common, "make_registry", lambda: ProviderRegistry(overrides={"local": provider})
    )
    return models


def test_docs_add_list_show_search_remove(home: Path, facts: Path) -> None:
    added = runner.invoke(cli.app, ["docs", "add", str(facts), "--collection", "facts"])
    assert added.exit_code == 0, added.output
    assert "2 file(s) added" in added.stdout
    again = runner.invoke(cli.app, ["docs", "add", str(facts), "--collection", "facts"])
    assert "2 unchanged; 0 passage(s) written" in again.stdout
    listed = runner.invoke(cli.app, ["docs", "list"])
    assert "facts" in listed.stdout
    assert str(home / "collections") in listed.stderr
    shown = runner.invoke(cli.app, ["docs", "show", "facts"])
    assert str(facts / "trains.txt") in shown.stdout
    found = runner.invoke(cli.app, ["docs", "search", "facts", "night train Inverness"])
    assert found.stdout.startswith("[1] trains (")
    (facts / "bees.txt").unlink()
    missing = runner.invoke(cli.app, ["docs", "remove", "facts", "--missing"])
    assert "dropped 1 file(s)" in missing.stdout
    removed = runner.invoke(cli.app, ["docs", "remove", "facts"])
    assert removed.exit_code == 0
    assert "no collections yet" in runner.invoke(cli.app, ["docs", "list"]).stderr


def test_bad_input_is_named_with_what_to_do(home: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(cli.app, ["docs", "add", str(tmp_path / "empty")])
    assert empty.exit_code == 1
    assert "no documents to index in this folder" in empty.stderr
    binary = tmp_path / "notes.txt"
    binary.write_bytes(b"\x00\x01\x02")
    refused = runner.invoke(cli.app, ["docs", "add", str(binary), "-C", "notes"])
    assert refused.exit_code == 1
    assert f"{binary}: the file is binary" in refused.stderr
    assert "nothing was added" in refused.stderr
    unknown = runner.invoke(cli.app, ["docs", "show", "nope"])
    assert unknown.exit_code == 1
    assert "no document collection named 'nope'" in unknown.stderr
    assert "conclave docs add PATH... --collection nope" in unknown.stderr
    assert "Traceback" not in unknown.output


def test_ask_with_docs_prints_the_answer_and_its_footnotes(
    home: Path, facts: Path, embedded_fakes: dict[str, FunctionModel]
) -> None:
    runner.invoke(cli.app, ["docs", "add", str(facts), "--collection", "facts"])
    result = runner.invoke(cli.app, ["ask", "--docs", "facts", "-q", TRAIN_QUESTION])
    assert result.exit_code == 0, result.output
    answer, footnotes = result.stdout.split("\n\n", 1)
    assert answer == "The night train leaves London Euston at nine in the evening [1]."
    assert footnotes.startswith(f"[1] trains: {facts / 'trains.txt'}, characters 0-73")
    assert '"The night train to Inverness leaves London Euston at nine in the evening."' in (
        footnotes
    )


def test_ask_json_has_top_level_citations_and_abstained(
    home: Path, facts: Path, embedded_fakes: dict[str, FunctionModel]
) -> None:
    runner.invoke(cli.app, ["docs", "add", str(facts), "--collection", "facts"])
    result = runner.invoke(cli.app, ["ask", "--docs", "facts", "--json", TRAIN_QUESTION])
    shown = json.loads(result.stdout)
    assert shown["abstained"] is False
    [citation] = shown["citations"]
    assert citation["marker"] == 1
    assert citation["path"] == str(facts / "trains.txt")
    assert citation["passage_id"] == shown["prepared"][0]["report"]["passages"][0]["passage"]["id"]
    peru = runner.invoke(cli.app, ["ask", "--docs", "facts", "--json", "Capital of Peru?"])
    assert json.loads(peru.stdout)["abstained"] is True
    kept = runner.invoke(cli.app, ["log", "show", shown["id"], "--json"])
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout)["citations"][0]["path"] == str(facts / "trains.txt")


def test_ask_with_an_unknown_collection_fails_before_asking(
    home: Path, embedded_fakes: dict[str, FunctionModel]
) -> None:
    result = runner.invoke(cli.app, ["ask", "--docs", "nope", "Anything?"])
    assert result.exit_code == 1
    assert "no document collection named 'nope'" in result.stderr
    assert all(not model.history for model in embedded_fakes.values())
