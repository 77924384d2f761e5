"""Reading IN.jsonl: rows, carried fields, and errors that name the line and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conclave.batch import BatchInputError, read_rows
from conclave.types import Message


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_prompt_or_messages_with_system_and_carried_fields(tmp_path: Path) -> None:
    rows = read_rows(
        write(
            tmp_path / "in.jsonl",
            json.dumps({"prompt": "2+2?", "id": "a", "expected": 4, "system": "Be brief."}),
            "",
            json.dumps({"messages": [{"role": "user", "content": "Hi"}], "tags": ["x"]}),
        )
    )
    first, second = rows
    assert first.line == 1
    assert first.conversation == (
        Message(role="system", content="Be brief."),
        Message(role="user", content="2+2?"),
    )
    assert first.fields == {"id": "a", "expected": 4}
    assert second.line == 3  # the blank line keeps its number
    assert second.conversation == (Message(role="user", content="Hi"),)
    assert second.fields == {"tags": ["x"]}


def test_every_bad_line_is_named_with_its_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path / "in.jsonl",
        json.dumps({"prompt": "fine"}),
        '{"prompt": "unterminated',
        json.dumps(["a", "list"]),
        json.dumps({"question": "no prompt"}),
        json.dumps({"prompt": "a", "messages": [{"role": "user", "content": "b"}]}),
        json.dumps({"messages": [{"role": "wizard", "content": "b"}]}),
        json.dumps({"prompt": 42}),
        json.dumps({"messages": []}),
    )
    with pytest.raises(BatchInputError) as caught:
        read_rows(path)
    message = str(caught.value)
    assert "7 bad line(s)" in message
    assert "line 1:" not in message
    assert "line 2: not valid JSON" in message
    assert "line 3: expected a JSON object, found list" in message
    assert 'line 4: needs exactly one of "prompt"' in message
    assert "found neither" in message
    assert "line 5:" in message
    assert "found both" in message
    assert "line 6: $.messages[0].role" in message
    assert "line 7: $.prompt" in message
    assert 'line 8: "messages" is empty' in message


def test_a_missing_or_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BatchInputError, match="no such file"):
        read_rows(tmp_path / "absent.jsonl")
    with pytest.raises(BatchInputError, match="no rows"):
        read_rows(write(tmp_path / "empty.jsonl", ""))
