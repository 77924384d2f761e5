"""Evaluation data sets: JSONL files of questions with their accepted answers.

One JSON object per line:

```json
{"id": "mmlu-17", "question": "Which gas ...?", "choices": ["Oxygen", "Nitrogen"], "answers": ["B"]}
{"id": "gsm8k-3", "question": "Janet's ducks ...", "answers": ["18"], "kind": "number"}
{"id": "cap-9", "question": "What is the capital of Peru?", "answers": ["Lima"]}
```

`answers` holds every accepted answer (aliases); `kind` (letter | number | text) says how an
answer is scored and, when left out, follows from the row: `letter` with `choices`, `number` when
every accepted answer is a number, else `text`. `instruction` replaces the kind's plain
instruction (to give room to reason, say). A row of several questions in one request has a
`question` and `parts` (each a question with its own choices, answers and kind) and kind
`parts`: it is asked as numbered questions with a reply template, and is right when every part
is. A row with `parts` and no `question` is a composite task (`CompositeRow`): each part a
question of its own, a part that uses an earlier part's answer naming it in `depends_on`:

```json
{"id": "composite-7", "parts": [
  {"question": "What is 9 - 5 + 3?", "answers": ["7"]},
  {"question": "Multiply the answer to part 1 by 4.", "answers": ["28"], "depends_on": [1]}]}
```

A bad row is an error naming the file, the line and the field.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from conclave.config import DocumentsOptions, json_path
from conclave.consensus.answers import canonical_number
from conclave.consensus.forms import FORM_INSTRUCTIONS
from conclave.consensus.kinds import asks_calculation, question_kind
from conclave.errors import ConfigError
from conclave.text_files import (
    bad_lines_message,
    json_object_line,
    numbered_lines,
    read_user_text,
)
from conclave.types import Frozen

PartKind = Literal["letter", "number", "text"]
AnswerKind = Literal["letter", "number", "text", "parts"]
LETTERS = string.ascii_uppercase

INSTRUCTIONS: dict[PartKind, str] = {
    "letter": FORM_INSTRUCTIONS["letter"],
    "number": FORM_INSTRUCTIONS["number"],
    "text": FORM_INSTRUCTIONS["words"],
}
"""The one plain instruction appended to every question of a kind, the same for every set-up."""

PLACEHOLDERS: dict[PartKind, str] = {
    "letter": "<letter>",
    "number": "<number>",
    "text": "<a few words>",
}
"""How the reply template of a row of several questions names each part's form."""

PARTS_INSTRUCTION = "Reply in the form:"


class EvalQuestion(Frozen):
    """One question with its accepted answers: a row, or one part of a row."""

    question: str = Field(min_length=1)
    choices: tuple[str, ...] = ()
    answers: tuple[str, ...] = Field(min_length=1)
    kind: AnswerKind = "text"

    @model_validator(mode="before")
    @classmethod
    def _infer_kind(cls, data: object) -> object:
        if not isinstance(data, dict) or data.get("kind") is not None:
            return data
        answers = data.get("answers")
        if data.get("parts"):
            kind = "parts"
        elif data.get("choices"):
            kind = "letter"
        elif isinstance(answers, list | tuple) and answers and all(_is_number(a) for a in answers):
            kind = "number"
        else:
            kind = "text"
        return {**data, "kind": kind}

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
    def _answers_fit_kind(self) -> EvalQuestion:
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

    def body(self) -> str:
        """The question and its lettered choices."""
        shown = [self.question.strip()]
        if self.choices:
            shown.append(
                "\n".join(
                    f"{letter}. {choice}"
                    for letter, choice in zip(self.letters, self.choices, strict=True)
                )
            )
        return "\n\n".join(shown)


class EvalPart(EvalQuestion):
    """One question of a row that asks several."""

    kind: PartKind = "text"


_QUESTION_FIELDS = set(EvalQuestion.model_fields)
"""What a part shares with a row: the question, its choices, answers and kind."""


class EvalRow(EvalQuestion):
    """One question with its accepted answers (or several, as `parts`)."""

    id: str = Field(min_length=1)
    source: str | None = None
    """Where the question comes from (free text, for people)."""
    instruction: str | None = Field(default=None, min_length=1)
    """Replaces the kind's plain instruction (INSTRUCTIONS)."""
    parts: tuple[EvalPart, ...] = ()
    """The questions of a row of kind `parts`, asked together and numbered."""

    @model_validator(mode="before")
    @classmethod
    def _answers_of_parts(cls, data: object) -> object:
        if not isinstance(data, dict) or not data.get("parts") or data.get("answers"):
            return data
        parts = data["parts"]
        if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
            return data
        firsts = [(p.get("answers") or ["?"])[0] for p in parts]
        joined = "\n".join(f"{number}. {answer}" for number, answer in enumerate(firsts, 1))
        return {**data, "answers": [joined]}

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _parts_fit_kind(self) -> EvalRow:
        self.check_parts()
        return self

    def check_parts(self) -> None:
        """ValueError unless the row's parts fit its kind: at least 2 for kind `parts`, none
        for the other kinds."""
        if self.kind == "parts" and len(self.parts) < 2:
            raise ValueError("kind is parts but the row has fewer than 2 parts")
        if self.kind != "parts" and self.parts:
            raise ValueError(f"the row has parts but its kind is {self.kind}")

    def part_rows(self) -> tuple[EvalRow, ...]:
        """Each part as a row of its own ("<id>.1", "<id>.2"...), to be scored alone."""
        return tuple(
            EvalRow(id=f"{self.id}.{number}", **part.model_dump(include=_QUESTION_FIELDS))
            for number, part in enumerate(self.parts, 1)
        )

    @property
    def question_kind(self) -> str:
        """The kind of question a choice is made for: `calculation` for a number or a short
        text whose question asks for one (`conclave.consensus.kinds`), else the answer's kind."""
        return question_kind(self.kind, asks_calculation(self.question))

    def prompt(self) -> str:
        """The question as sent to every set-up: the question, the lettered choices, and the
        row's instruction or its kind's plain one; for several parts, the question, then each
        part numbered, then the reply template ("1. <letter>")."""
        if self.kind != "parts":
            return f"{self.body()}\n\n{self.instruction or INSTRUCTIONS[self.kind]}"
        asked = [self.question.strip()]
        asked += [f"{number}. {part.body()}" for number, part in enumerate(self.parts, 1)]
        template = "\n".join(
            f"{number}. {PLACEHOLDERS[part.kind]}" for number, part in enumerate(self.parts, 1)
        )
        asked.append(f"{self.instruction or PARTS_INSTRUCTION}\n{template}")
        return "\n\n".join(asked)


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


COMPOSITE_QUESTION = "This task has {count} parts. Answer every part."
"""What a composite task asks before its numbered parts."""


class CompositePart(EvalPart):
    """One part: a question with its accepted answers, and the earlier parts it uses."""

    source: str | None = None
    depends_on: tuple[int, ...] = ()


class CompositeRow(EvalRow):
    """A task of several parts (kind `parts`), some using an earlier part's answer
    (`depends_on`, 1-based): asked and scored as any row of parts, each part on its own too.
    The question before the parts is COMPOSITE_QUESTION when the row gives none."""

    parts: tuple[CompositePart, ...] = Field(min_length=2, max_length=8)

    @model_validator(mode="before")
    @classmethod
    def _composite_question(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("parts"), list):
            return data
        question = COMPOSITE_QUESTION.format(count=len(data["parts"]))
        return {"question": question, "kind": "parts", **data}

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


class Dataset(Frozen):
    """A named list of rows; the name is the file's stem."""

    name: str
    rows: tuple[EvalRow, ...]
    documents: DocumentsOptions | None = None
    """The collection every answer is grounded in (a grounded data set's "+docs" halves)."""


@dataclass(frozen=True)
class RowLimits:
    """How many rows of each data set to take (`--limit`): one number for every set, and
    numbers for named sets."""

    every: int | None = None
    by_name: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, texts: Sequence[str]) -> RowLimits:
        """`N` or `NAME=N` values; ConfigError naming one that is neither."""
        every: int | None = None
        by_name: dict[str, int] = {}
        for text in texts:
            name, equals, number = text.rpartition("=")
            if not number.isdigit() or int(number) < 1 or (equals and not name):
                raise ConfigError(
                    f"--limit {text!r}: expected a number of rows (from 1), or NAME=N for the "
                    "data set NAME (its file name without .jsonl)"
                )
            if equals:
                by_name[name] = int(number)
            else:
                every = int(number)
        return cls(every, by_name)

    def of(self, name: str) -> int | None:
        return self.by_name.get(name, self.every)

    def check(self, names: Sequence[str]) -> None:
        """ConfigError when a limit names no data set of the run."""
        unknown = sorted(set(self.by_name) - set(names))
        if unknown:
            raise ConfigError(
                f"--limit names {', '.join(unknown)}, which is not a data set of this run "
                f"({', '.join(names)})"
            )


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
                "is not a known field (id, question, choices, answers, kind, source, "
                "instruction, parts; with corpus: answerable, source_file, source_quote; or id, "
                "parts, source for a composite task)"
            )
        problems.append(f"field {field}: {message}" if field else message)
    return "; ".join(problems)


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and canonical_number(value) is not None
