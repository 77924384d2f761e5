"""A batch's rows in and out: reading IN.jsonl (with clear errors by line), and the result row.

An input line is a JSON object with a `prompt` (text) or `messages` (a list of
`{"role", "content"}`), an optional `system`, and any other fields, which are carried through
to the output row untouched under `fields`:

```json
{"prompt": "What is 17 + 25?", "id": "q1", "expected": "42"}
{"messages": [{"role": "user", "content": "Hi"}], "topic": "greeting"}
```
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from conclave.config import format_validation_error
from conclave.errors import ConfigError
from conclave.prompt_checks import check_prompt, unicode_problem
from conclave.session import conversation_from
from conclave.text_files import (
    bad_lines_message,
    json_object_line,
    numbered_lines,
    read_user_text,
)
from conclave.types import Frozen, Message, Usage

MAX_ERRORS_SHOWN = 10
_RESERVED = ("prompt", "messages", "system")


class BatchInputError(ConfigError):
    """IN.jsonl has lines that are not usable rows; the message names each line and why."""


class BatchRow(Frozen):
    """One input row: where it was, what to ask, and the fields carried through."""

    line: int
    """Its 1-based line number in the input: the row's key, also when a run is resumed."""
    conversation: tuple[Message, ...]
    fields: dict[str, JsonValue] = Field(default_factory=dict)
    input_sha256: str
    """The digest of the input line's JSON, to tell a resumed run from one over other data."""

    @property
    def key(self) -> str:
        return str(self.line)


class RowError(Frozen):
    """Why a row has no answer: a stable type (the exception's class) and a message."""

    type: str
    message: str


class BatchResult(BaseModel):
    """One output row: the input row's line and fields, and the consensus (or its error)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    line: int
    fields: dict[str, JsonValue] = {}
    answer: str | None = None
    agreement: JsonValue = None
    """The transcript's agreement, when the consensus computes one."""
    usage: Usage = Usage()
    transcript_id: str | None = None
    error: RowError | None = None
    input_sha256: str

    @property
    def key(self) -> str:
        return str(self.line)

    @property
    def ok(self) -> bool:
        return self.error is None


class _Conversation(BaseModel):
    """What an input line must hold besides the carried fields."""

    model_config = ConfigDict(extra="ignore")

    prompt: str | None = None
    messages: list[Message] | None = None
    system: str | None = None


def read_rows(path: Path) -> list[BatchRow]:
    """Every row of a JSONL file; BatchInputError listing the bad lines (number and problem).

    Blank lines are skipped (they keep their line numbers for the others).
    """
    text = read_user_text(path, BatchInputError, expected="JSONL batch input")
    rows: list[BatchRow] = []
    problems: list[tuple[int, str]] = []
    for number, line in numbered_lines(text):
        try:
            rows.append(parse_row(line, number))
        except ValueError as exc:
            problems.append((number, str(exc)))
    if problems:
        raise BatchInputError(bad_lines_message(path, problems, shown=MAX_ERRORS_SHOWN))
    if not rows:
        raise BatchInputError(f"{path}: no rows (one JSON object per line)")
    return rows


def parse_row(line: str, number: int) -> BatchRow:
    """One input line as a row; ValueError saying what is wrong and what is expected."""
    data = json_object_line(line)
    try:
        parsed = _Conversation.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_error(exc, "row").splitlines()[1:]
        raise ValueError("; ".join(problem.strip() for problem in problems)) from None
    if (parsed.prompt is None) == (parsed.messages is None):
        found = "both" if parsed.prompt is not None else "neither"
        raise ValueError(
            f'needs exactly one of "prompt" (text) or "messages" '
            f'(a list of {{"role", "content"}}), found {found}'
        )
    if parsed.messages is not None and not parsed.messages:
        raise ValueError('"messages" is empty: give at least one message')
    asked = parsed.prompt if parsed.prompt is not None else parsed.messages or []
    conversation = conversation_from(asked, system=parsed.system)
    try:
        check_prompt(conversation)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    fields = {name: value for name, value in data.items() if name not in _RESERVED}
    _check_unicode(fields)
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return BatchRow(
        line=number,
        conversation=conversation,
        fields=fields,
        input_sha256=hashlib.sha256(canonical.encode()).hexdigest(),
    )


def _check_unicode(fields: dict[str, JsonValue]) -> None:
    """ValueError naming the carried field that holds text with no UTF-8 form (a lone
    surrogate from a JSON escape): the output row could not be written."""
    for name, value in fields.items():
        for text in (name, *_texts(value)):
            problem = unicode_problem(text)
            if problem is not None:
                raise ValueError(f"field {name!r}: {problem}")


def _texts(value: JsonValue) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _texts(item)
