"""Composite questions: one task made of several parts, some of which need an earlier part's
answer; every part is scored.

A row of a composite data set lists its parts, each a question as in any data set, and a part
that uses an earlier one's answer names it in `depends_on` (1-based):

```json
{"id": "composite-7", "parts": [
  {"question": "What is 9 - 5 + 3?", "answers": ["7"], "kind": "number"},
  {"question": "What is the capital of Peru?", "answers": ["Lima"]},
  {"question": "Multiply the answer to part 1 by 4.", "answers": ["28"], "depends_on": [1]}
]}
```

Every set-up gets the same prompt (`CompositeRow.prompt`): the parts numbered, then the one
instruction to answer each on its own line, "Part N: <answer>". `part_answers` reads those
lines back, and each part is scored by its own kind's scorer; the row is right when every part
is.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from conclave.evaluation.dataset import EvalRow

COMPOSITE_INSTRUCTION = (
    'Write one line per part, "Part N: <answer>", and nothing else: for a number, the number '
    "only; for a multiple-choice question, the letter only; otherwise a few words."
)
"""The one instruction after the parts, the same for every set-up."""

_PART_LINE = re.compile(r"^[\s>*#_-]*part\s*(\d+)\s*[*_]*\s*[:.)\-]\s*[*_]*\s*(.*)$", re.I | re.M)


class CompositePart(EvalRow):
    """One part: a question with its accepted answers, and the earlier parts it uses."""

    id: str = "part"
    depends_on: tuple[int, ...] = ()


class CompositeRow(EvalRow):
    """A task of several parts. `question` and `answers` are derived from the parts (the
    task's text and every part's answers), so that code reading any row reads this one."""

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


def part_answers(answer: str, parts: int) -> tuple[str, ...]:
    """Each part's answer read from `answer`'s "Part N: ..." lines (the last line for a part
    wins, so a worked answer's final lines count); "" for a part with no line."""
    found: dict[int, str] = {}
    for match in _PART_LINE.finditer(answer):
        number = int(match.group(1))
        if 1 <= number <= parts:
            found[number] = match.group(2).strip().strip("*_").strip()
    return tuple(found.get(number, "") for number in range(1, parts + 1))
