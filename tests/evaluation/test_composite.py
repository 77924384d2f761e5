"""Composite rows (several parts, some using an earlier one): read, asked, each part scored;
the shipped composite set; and a swarm evaluated on them against a member alone, with its
parts and its first plans counted in the report."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from conclave.config import AggregatorSpec, ConsensusConfig, ModelSpec
from conclave.errors import ConfigError
from conclave.evaluation.dataset import CompositeRow, load_dataset
from conclave.evaluation.evaluate import EvaluationRun
from conclave.evaluation.report import build_report
from conclave.evaluation.scoring import Scorers
from conclave.evaluation.setups import plan_setups
from conclave.providers.testing import FunctionModel
from conclave.types import Message, SamplingOptions

from .fakes import fake_registry

COMPOSITE = Path(__file__).parent.parent.parent / "data" / "devsets" / "composite"

PARTS: list[dict[str, object]] = [
    {"question": "What is 9 - 5 + 3?", "answers": ["7"]},
    {"question": "What is the capital of Peru?", "answers": ["Lima"]},
    {
        "question": "Which gas do plants take in?",
        "choices": ["Oxygen", "Carbon dioxide"],
        "answers": ["B"],
    },
    {"question": "Multiply the answer to part 1 by 4.", "answers": ["28"], "depends_on": [1]},
]
ROW: dict[str, object] = {"id": "c1", "parts": PARTS}


def write(path: Path, *rows: Mapping[str, object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_composite_row_is_asked_part_by_part_and_each_part_is_scored(tmp_path: Path) -> None:
    [row] = load_dataset(write(tmp_path / "c.jsonl", ROW)).rows

    assert isinstance(row, CompositeRow)
    assert row.kind == "parts"
    prompt = row.prompt()
    assert prompt.startswith("This task has 4 parts. Answer every part.\n\n1. What is 9 - 5 + 3?")
    assert "3. Which gas do plants take in?\n\nA. Oxygen\nB. Carbon dioxide" in prompt
    assert prompt.endswith(
        "Reply in the form:\n1. <number>\n2. <a few words>\n3. <letter>\n4. <number>"
    )
    scorers = Scorers()
    answer = "1. 7\n2. The capital is Lima.\n3. (B)\n4. 27"
    assert scorers.score_parts(answer, row) == (True, True, True, False)
    assert not scorers.score(answer, row)
    assert scorers.score(answer.replace("27", "28"), row)
    assert scorers.score_parts("1. 7\n3. B", row) == (True, False, True, False)  # one missing


@pytest.mark.parametrize(
    ("parts", "problem"),
    [
        ([PARTS[0]], "at least 2 items"),
        (
            [PARTS[0], {"question": "x", "answers": ["1"], "depends_on": [2]}],
            "part 2 depends on part 2; a part may only use an earlier part",
        ),
    ],
)
def test_a_bad_composite_row_names_its_line_and_problem(
    tmp_path: Path, parts: list[object], problem: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_dataset(write(tmp_path / "bad.jsonl", {"id": "x", "parts": parts}))


@pytest.mark.parametrize("name", ["dev", "test"])
def test_the_shipped_composite_sets_have_two_to_four_parts_and_dependent_ones(name: str) -> None:
    rows = load_dataset(COMPOSITE / f"{name}.jsonl").rows
    assert all(isinstance(row, CompositeRow) for row in rows)
    composite = [row for row in rows if isinstance(row, CompositeRow)]
    assert all(2 <= len(row.parts) <= 4 for row in composite)
    with_dependants = sum(1 for row in composite if row.dependent_parts)
    assert 0.3 <= with_dependants / len(rows) <= 0.7
    kinds = {part.kind for row in composite for part in row.parts}
    assert kinds == {"letter", "number", "text"}


def test_the_dev_and_test_sets_share_no_question() -> None:
    def questions(name: str) -> set[str]:
        rows = load_dataset(COMPOSITE / f"{name}.jsonl").rows
        return {
            p.question
            for r in rows
            if isinstance(r, CompositeRow)
            for p in r.parts
            if not p.depends_on
        }

    assert not questions("dev") & questions("test")


def solver(messages: Sequence[Message], options: SamplingOptions) -> str:
    """A model that plans one step per part when asked for a plan, solves one part when given a
    step, and else answers the whole task with part 1 right and part 2 wrong."""
    text = messages[-1].content
    if options.json_schema is not None:
        steps: list[dict[str, object]] = [
            {"id": n, "agent": "solver", "instruction": f"Answer part {n}.", "depends_on": []}
            for n in (1, 2)
        ]
        return json.dumps({"steps": steps})
    if text.startswith("Answer part 1."):
        return "7"
    if text.startswith("Answer part 2."):
        return "Lima"
    if "Results of the steps:" in text:
        return "1. 7\n2. Lima"
    return "1. 7\n2. Cusco"


async def test_a_swarm_is_evaluated_on_composite_rows_part_by_part(tmp_path: Path) -> None:
    row = {"id": "c2", "parts": PARTS[:2]}
    dataset = load_dataset(write(tmp_path / "composite.jsonl", row))
    spec = ModelSpec(id="local:solver", temperature=0.0, max_tokens=64)
    config = ConsensusConfig(
        models=(spec,),
        aggregator=(AggregatorSpec(model=spec),),
        strategy="swarm",
        strategy_options={
            "agents": [{"name": "solver", "description": "anything", "role": "You solve one part."}]
        },
    )
    setups = plan_setups([("panel", config)], ["swarm"])
    registry = fake_registry({"solver": FunctionModel(solver)})

    results = await EvaluationRun(out_dir=tmp_path / "out", concurrency=1).run(
        [dataset], setups, Scorers(), registry
    )

    by_setup = {r.setup: r for r in results}
    alone, swarm = by_setup["local:solver"], by_setup["swarm"]
    assert (alone.correct, alone.parts_correct, alone.first_plan_valid) == (
        False,
        (True, False),
        None,
    )
    assert (swarm.correct, swarm.parts_correct, swarm.first_plan_valid) == (
        True,
        (True, True),
        True,
    )
    report = build_report([dataset], setups, results)
    swarm_score = report.score("swarm", "composite")
    assert swarm_score is not None
    assert swarm_score.part_accuracy == 1.0
    assert swarm_score.valid_first_plans == 1.0
    assert swarm_score.vs_best_member is not None
    assert swarm_score.vs_best_member.wins == 1
