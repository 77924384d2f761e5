"""Reading a composite task's answer part by part: the "Part N: <answer>" lines that
`CompositeRow.prompt` asks for (see `conclave.evaluation.dataset`), each part then scored by
its own kind's scorer."""

from __future__ import annotations

import re

_PART_LINE = re.compile(r"^[\s>*#_-]*part\s*(\d+)\s*[*_]*\s*[:.)\-]\s*[*_]*\s*(.*)$", re.I | re.M)


def part_answers(answer: str, parts: int) -> tuple[str, ...]:
    """Each part's answer read from `answer`'s "Part N: ..." lines (the last line for a part
    wins, so a worked answer's final lines count); "" for a part with no line."""
    found: dict[int, str] = {}
    for match in _PART_LINE.finditer(answer):
        number = int(match.group(1))
        if 1 <= number <= parts:
            found[number] = match.group(2).strip().strip("*_").strip()
    return tuple(found.get(number, "") for number in range(1, parts + 1))
