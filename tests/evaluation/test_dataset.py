"""Loading JSONL data sets: kinds inferred, prompts built, bad rows named by line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conclave.errors import ConfigError
from conclave.evaluation.dataset import load_dataset


def write_rows(path: Path, *rows: object) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_rows_load_with_their_kind_inferred(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "mixed.jsonl",
        {"id": 1, "question": "Which is a gas?", "choices": ["Iron", "Neon"], "answers": ["B"]},
        {"id": "sum", "question": "What is 2 + 2?", "answers": [4]},
        "",
        {"id": "cap", "question": "Capital of Peru?", "answers": "Lima"},
    )
    dataset = load_dataset(path)
    assert dataset.name == "mixed"
    assert [(row.id, row.kind) for row in dataset.rows] == [
        ("1", "letter"),
        ("sum", "number"),
        ("cap", "text"),
    ]
    assert dataset.rows[2].answers == ("Lima",)
    assert load_dataset(path, limit=2).rows == dataset.rows[:2]


def test_the_prompt_lists_the_choices_and_one_plain_instruction(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "mc.jsonl",
        {"id": "q", "question": "Which is a gas?", "choices": ["Iron", "Neon"], "answers": ["B"]},
    )
    prompt = load_dataset(path).rows[0].prompt()
    assert prompt == "Which is a gas?\n\nA. Iron\nB. Neon\n\nAnswer with the letter only."


def test_every_bad_row_is_named_by_line_and_field(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "bad.jsonl",
        {"id": "ok", "question": "Fine?", "answers": ["yes"]},
        {"id": "no-answers", "question": "Where are the answers?"},
        "{not json",
        {"id": "letter", "question": "Pick", "choices": ["x", "y"], "answers": ["C"]},
        {"id": "num", "question": "How many?", "answers": ["many"], "kind": "number"},
        {"id": "ok", "question": "Again?", "answers": ["yes"]},
        {"id": "typo", "question": "Q", "answer": ["x"]},
        ["a", "list"],
    )
    with pytest.raises(ConfigError) as caught:
        load_dataset(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 7 bad row(s)")
    assert "line 2: field answers: is required" in message
    assert "line 3: not valid JSON" in message
    assert "line 4: answers: 'C' is not one of the choice letters A, B" in message
    assert "line 5: answers: 'many' is not a number" in message
    assert "line 6: id 'ok' repeats line 1" in message
    assert "line 7: field answers: is required; field answer: is not a known field" in message
    assert "line 8: expected a JSON object" in message


def test_a_missing_or_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such data set file"):
        load_dataset(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ConfigError, match="no rows"):
        load_dataset(tmp_path / "empty.jsonl")


def test_the_shipped_development_sets_are_valid_and_mixed() -> None:
    devsets = Path(__file__).parents[2] / "data" / "devsets"
    datasets = [load_dataset(path) for path in sorted(devsets.glob("*.jsonl"))]
    kinds = {row.kind for dataset in datasets for row in dataset.rows}
    assert sum(len(dataset.rows) for dataset in datasets) >= 300
    assert kinds == {"letter", "number", "text", "parts"}
    names = {dataset.name for dataset in datasets}
    assert {"mmlu_stem", "mmlu_humanities", "mmlu_social_sciences", "mmlu_other"} <= names
    ids = [row.id for dataset in datasets for row in dataset.rows]
    assert len(ids) == len(set(ids))  # no question in two sets: each can be left out alone
