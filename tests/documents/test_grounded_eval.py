"""`conclave eval` on a grounded data set, with fake models: the corpus is indexed, the
questions are answered without and with the documents, unanswerable ones score by abstention,
and the report carries the citation scores."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conclave import cli
from conclave.cli import common
from conclave.consensus.grounding import SOURCES_HEADER
from conclave.consensus.support import JUDGE_SYSTEM
from conclave.errors import ConfigError
from conclave.evaluation.dataset import load_dataset
from conclave.evaluation.grounded import grounded_datasets
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeProvider, FunctionModel
from conclave.types import Message, SamplingOptions
from test_engine import make_config
from test_grounding_runs import FACTS, TRAIN_QUESTION, panel_member

runner = CliRunner()

ROWS: list[dict[str, object]] = [
    {
        "id": "train",
        "question": TRAIN_QUESTION,
        "answers": ["nine in the evening"],
        "corpus": "corpus",
        "source_file": "trains.txt",
        "source_quote": "at nine in the evening",
    },
    {"id": "peru", "question": "What is the capital of Peru?", "corpus": "corpus",
     "answerable": False},
]  # fmt: skip


def knows_only_the_documents(messages: Sequence[Message], options: SamplingOptions) -> str:
    """Without the passages it does not know; with them it answers and judges as
    `panel_member` does."""
    grounded = any(m.content.startswith(SOURCES_HEADER) for m in messages)
    if not grounded and messages[0].content != JUDGE_SYSTEM:
        return "I do not know."
    return panel_member(messages, options)


def write_grounded_set(folder: Path) -> Path:
    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    for name, text in FACTS.items():
        (corpus / name).write_text(text, "utf-8")
    data = folder / "trains.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS), "utf-8")
    return data


def test_eval_answers_with_and_without_the_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = {name: FunctionModel(knows_only_the_documents) for name in ("a", "b", "agg")}
    registry = ProviderRegistry(overrides={"openrouter": FakeProvider(dict(models))})
    monkeypatch.setattr(common, "make_registry", lambda: registry)
    config = tmp_path / "panel.json"
    config.write_text(make_config(["a", "b"], iterations=0).model_dump_json())
    data = write_grounded_set(tmp_path / "set")
    out_dir = tmp_path / "out"
    args = ["eval", str(data), "-c", str(config), "-s", "vote", "-o", str(out_dir), "-q"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "grounded answers" in result.stdout

    report = json.loads((out_dir / "report.json").read_text())
    assert [d["name"] for d in report["datasets"]] == [
        "trains",
        "trains+docs",
        "trains+docs:unanswerable",
    ]
    accuracy = {(s["setup"], s["dataset"]): s["accuracy"] for s in report["scores"]}
    assert accuracy[("vote", "trains")] == 0.0
    assert accuracy[("vote", "trains+docs")] == 1.0
    assert accuracy[("vote", "trains+docs:unanswerable")] == 1.0  # it abstained
    [vote] = [g for g in report["grounded"] if g["setup"] == "vote"]
    assert vote["dataset"] == "trains"
    assert (vote["answerable"], vote["unanswerable"]) == (1, 1)
    assert vote["abstention"] == 1.0
    assert vote["false_abstention"] == 0.0
    assert vote["returned_recall"] == 1.0
    assert vote["source_retrieved"] == 1.0
    assert vote["source_cited"] == 1.0
    assert vote["unretrieved_citations"] == 0
    assert (out_dir / "collections" / "trains.sqlite").is_file()

    strategies_only = [*args[:-3], "-o", str(tmp_path / "only"), "-q", "--no-members"]
    result = runner.invoke(cli.app, strategies_only)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "only" / "report.json").read_text())
    assert report["setups"] == ["vote"]


def test_a_grounded_set_needs_its_corpus(tmp_path: Path) -> None:
    data = write_grounded_set(tmp_path / "set")
    (tmp_path / "set" / "corpus" / "trains.txt").unlink()
    (tmp_path / "set" / "corpus" / "bees.txt").unlink()
    with pytest.raises(ConfigError, match="no documents to index"):
        grounded_datasets([(load_dataset(data), data)], tmp_path / "out")
    rows = [{**ROWS[0], "corpus": "elsewhere"}]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    with pytest.raises(ConfigError, match=r"the corpus folder .*elsewhere does not exist"):
        grounded_datasets([(load_dataset(data), data)], tmp_path / "out")


def test_a_bad_grounded_row_is_named_by_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(
        json.dumps({"id": "x", "question": "Q?", "corpus": "c", "answerable": False,
                    "answers": ["A"]}) + "\n"
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"line 1: .*takes no answers"):
        load_dataset(data)


def test_the_configs_own_documents_settings_are_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = {name: FunctionModel(knows_only_the_documents) for name in ("a", "b", "agg")}
    registry = ProviderRegistry(overrides={"openrouter": FakeProvider(dict(models))})
    monkeypatch.setattr(common, "make_registry", lambda: registry)
    config = tmp_path / "panel.json"
    grounded = make_config(["a", "b"], iterations=0, documents={"collection": "x", "passages": 1})
    config.write_text(grounded.model_dump_json())
    data = write_grounded_set(tmp_path / "set")
    out_dir = tmp_path / "out"
    args = ["eval", str(data), "-c", str(config), "-s", "vote", "-o", str(out_dir), "-q"]
    assert runner.invoke(cli.app, [*args, "--no-members"]).exit_code == 0
    lines = (out_dir / "transcripts.jsonl").read_text().splitlines()
    transcripts = [json.loads(line) for line in lines]
    by_set = {entry["dataset"]: entry["transcript"] for entry in transcripts}
    assert by_set["trains"]["prepared"] == []  # without the documents: no retrieval at all
    retrieval = by_set["trains+docs"]["prepared"][0]["report"]
    assert retrieval["collection"] == "trains"
    assert len(retrieval["passages"]) == 1  # the config's own `passages`
