"""Evaluation data sets: JSONL files of questions with their accepted answers.

One JSON object per line:

```json
{"id": "mmlu-17", "question": "Which gas ...?", "choices": ["Oxygen", "Nitrogen"], "answers": ["B"]}
{"id": "gsm8k-3", "question": "Janet's ducks ...", "answers": ["18"], "kind": "number"}
{"id": "cap-9", "question": "What is the capital of Peru?", "answers": ["Lima"]}
```

`answers` holds every accepted answer (aliases); `kind` (letter | number | text) says how an
answer is scored and, when left out, follows from the row: `letter` with `choices`, `number` when
every accepted answer is a number, else `text`. A row with `parts` instead is a composite task
(`CompositeRow`): each part a question of its own, a part that uses an earlier part's answer
naming it in `depends_on`:

```json
{"id": "composite-7", "parts": [
  {"question": "What is 9 - 5 + 3?", "answers": ["7"]},
  {"question": "Multiply the answer to part 1 by 4.", "answers": ["28"], "depends_on": [1]}]}
```

A bad row is an error naming the file, the line and the field.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from conclave.config import DocumentsOptions, json_path
from conclave.consensus.answers import canonical_number
from conclave.errors import ConfigError
from conclave.text_files import (
    bad_lines_message,
    json_object_line,
    numbered_lines,
    read_user_text,
)
from conclave.types import Frozen

AnswerKind = Literal["letter", "number", "text"]
LETTERS = string.ascii_uppercase

INSTRUCTIONS: dict[AnswerKind, str] = {
    "letter": "Answer with the letter only.",
    "number": "Answer with the number only.",
    "text": "Answer in a few words only.",
}
"""The one plain instruction appended to every question of a kind, the same for every set-up."""


class EvalRow(Frozen):
    """One question with its accepted answers."""

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    choices: tuple[str, ...] = ()
    answers: tuple[str, ...] = Field(min_length=1)
    kind: AnswerKind = "text"
    source: str | None = None
    """Where the question comes from (free text, for people)."""

    @model_validator(mode="before")
    @classmethod
    def _infer_kind(cls, data: object) -> object:
        if not isinstance(data, dict) or data.get("kind") is not None:
            return data
        answers = data.get("answers")
        if data.get("choices"):
            kind = "letter"
        elif isinstance(answers, list | tuple) and answers and all(_is_number(a) for a in answers):
            kind = "number"
        else:
            kind = "text"
        return {**data, "kind": kind}

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("answers", mode="before")
    @classmethod
    def _answers_as_text(cls, value: object) -> object:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, list):
            return [
                str(a) if isinstance(a, int | float) and not isinstance(a, bool) else a
                for a in value
            ]
        return value

    @field_validator("choices")
    @classmethod
    def _choices_fit_letters(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if value and not 2 <= len(value) <= len(LETTERS):
            raise ValueError(f"needs 2 to {len(LETTERS)} choices, not {len(value)}")
        if any(not choice.strip() for choice in value):
            raise ValueError("a choice is empty")
        return value

    @model_validator(mode="after")
    def _answers_fit_kind(self) -> EvalRow:
        if any(not answer.strip() for answer in self.answers):
            raise ValueError("answers: an accepted answer is empty")
        if self.kind == "letter":
            if not self.choices:
                raise ValueError("kind is letter but the row has no choices")
            valid = LETTERS[: len(self.choices)]
            bad = [a for a in self.answers if a.strip().upper() not in valid]
            if bad:
                raise ValueError(
                    f"answers: {bad[0]!r} is not one of the choice letters {', '.join(valid)}"
                )
        if self.kind == "number":
            bad = [a for a in self.answers if not _is_number(a)]
            if bad:
                raise ValueError(f"answers: {bad[0]!r} is not a number (kind is number)")
        return self

    @property
    def letters(self) -> str:
        """The letters of the choices: 'ABCD' for four."""
        return LETTERS[: len(self.choices)]

    def prompt(self) -> str:
        """The question as sent to every set-up: the question, the lettered choices, and the
        kind's plain instruction."""
        parts = [self.question.strip()]
        if self.choices:
            parts.append(
                "\n".join(
                    f"{letter}. {choice}"
                    for letter, choice in zip(self.letters, self.choices, strict=True)
                )
            )
        parts.append(INSTRUCTIONS[self.kind])
        return "\n\n".join(parts)


class GroundedRow(EvalRow):
    """A question about a corpus of documents (see `conclave.evaluation.grounded`): `corpus` is
    the folder of documents (relative to the data set's file); `answerable: false` marks a
    question the documents do not answer (no `answers`: the right answer is to abstain);
    `source_file` and `source_quote` say where the answer is, where known."""

    answers: tuple[str, ...] = ()
    corpus: str = Field(min_length=1)
    answerable: bool = True
    source_file: str | None = None
    source_quote: str | None = None

    @model_validator(mode="after")
    def _answers_fit_answerable(self) -> GroundedRow:
        if self.answerable and not self.answers:
            raise ValueError("answers: an answerable question needs its accepted answers")
        if not self.answerable and self.answers:
            raise ValueError("answers: a question marked answerable: false takes no answers")
        return self


COMPOSITE_INSTRUCTION = (
    'Write one line per part, "Part N: <answer>", and nothing else: for a number, the number '
    "only; for a multiple-choice question, the letter only; otherwise a few words."
)
"""The one instruction after a composite task's parts, the same for every set-up."""


class CompositePart(EvalRow):
    """One part: a question with its accepted answers, and the earlier parts it uses."""

    id: str = "part"
    depends_on: tuple[int, ...] = ()


class CompositeRow(EvalRow):
    """A task of several parts, some using an earlier part's answer (`depends_on`, 1-based).
    `question` and `answers` are derived from the parts (a header and every part's answers),
    so that code reading any row reads this one; each part is scored on its own (see
    `conclave.evaluation.composite`)."""

    parts: tuple[CompositePart, ...] = Field(min_length=2, max_length=8)

    @model_validator(mode="before")
    @classmethod
    def _derived_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("parts"), list):
            return data
        answers: list[object] = []
        for part in data["parts"]:
            if isinstance(part, dict) and isinstance(part.get("answers"), list):
                answers.extend(part["answers"])
        return {
            "question": "composite task",
            "answers": answers or ["-"],
            "kind": "text",
            **data,
        }

    @field_validator("parts")
    @classmethod
    def _dependencies_come_first(
        cls, parts: tuple[CompositePart, ...]
    ) -> tuple[CompositePart, ...]:
        for number, part in enumerate(parts, start=1):
            for needed in part.depends_on:
                if not 1 <= needed < number:
                    raise ValueError(
                        f"part {number} depends on part {needed}; a part may only use an "
                        f"earlier part (1 to {number - 1})"
                    )
        return parts

    @property
    def dependent_parts(self) -> int:
        return sum(1 for part in self.parts if part.depends_on)

    def prompt(self) -> str:
        """The task as sent to every set-up."""
        numbered = [
            f"Part {number}: {_part_text(part)}" for number, part in enumerate(self.parts, 1)
        ]
        header = f"This task has {len(self.parts)} parts. Answer every part."
        return "\n\n".join([header, *numbered, COMPOSITE_INSTRUCTION])


def _part_text(part: CompositePart) -> str:
    lines = [part.question.strip()]
    lines += [
        f"{letter}. {choice}" for letter, choice in zip(part.letters, part.choices, strict=True)
    ]
    return "\n".join(lines)


class Dataset(Frozen):
    """A named list of rows; the name is the file's stem."""

    name: str
    rows: tuple[EvalRow, ...]
    documents: DocumentsOptions | None = None
    """The collection every answer is grounded in (a grounded data set's "+docs" halves)."""


def load_dataset(path: str | Path, *, limit: int | None = None) -> Dataset:
    """Read and validate a JSONL data set (its first `limit` rows when given).

    Raises ConfigError naming the file, line and field of every problem found.
    """
    file = Path(path)
    text = read_user_text(
        file, ConfigError, expected="a JSONL data set", missing="no such data set file"
    )
    rows: list[EvalRow] = []
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, line in numbered_lines(text):
        try:
            row = _parse_row(line)
        except ValueError as exc:
            problems.append((number, str(exc)))
            continue
        if row.id in seen:
            problems.append((number, f"id {row.id!r} repeats line {seen[row.id]}"))
            continue
        seen[row.id] = number
        rows.append(row)
    if problems:
        raise ConfigError(bad_lines_message(file, problems, counted_as="row", shown=20))
    if not rows:
        raise ConfigError(f"{file}: no rows (expected one JSON object per line)")
    if limit is not None:
        rows = rows[:limit]
    return Dataset(name=file.stem, rows=tuple(rows))


def _parse_row(line: str) -> EvalRow:
    data = json_object_line(line, expected="a JSON object with id, question and answers")
    shape: type[EvalRow] = EvalRow
    if "parts" in data:
        shape = CompositeRow
    elif "corpus" in data:
        shape = GroundedRow
    try:
        return shape.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_first_problems(exc)) from None


def _first_problems(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        field = json_path(error["loc"]).removeprefix("$.").removeprefix("$")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required"
        elif error["type"] == "extra_forbidden":
            message = (
                "is not a known field (id, question, choices, answers, kind, source; with "
                "corpus: answerable, source_file, source_quote; or id, parts, source for a "
                "composite task)"
            )
        problems.append(f"field {field}: {message}" if field else message)
    return "; ".join(problems)


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and canonical_number(value) is not None
