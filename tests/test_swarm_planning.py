"""The swarm's plan: the schema that only valid plans satisfy, and the checks naming what is
wrong with a plan written without it."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest

from conclave.consensus.planning import (
    Plan,
    PlanLimits,
    PlanStep,
    fallback_plan,
    plan_depth,
    plan_schema,
    read_plan,
    with_named_dependencies,
    with_task_text,
)

AGENTS = ("math", "facts")
LIMITS = PlanLimits(max_steps=4, max_depth=2)


def step(id: int, agent: str = "math", *depends_on: int) -> dict[str, object]:
    return {"id": id, "agent": agent, "instruction": f"do {id}", "depends_on": list(depends_on)}


def plan_json(*steps: dict[str, object]) -> str:
    return json.dumps({"steps": list(steps)})


def schema_accepts(text: str) -> bool:
    validator = jsonschema_rs.validator_for(plan_schema(AGENTS, LIMITS).value())
    return bool(validator.is_valid(json.loads(text)))


def test_a_valid_plan_is_read_with_its_dependencies() -> None:
    text = plan_json(step(1), step(2, "facts"), step(3, "math", 1, 2))

    plan = read_plan(text, AGENTS, LIMITS)

    assert isinstance(plan, Plan)
    assert [s.depends_on for s in plan.steps] == [(), (), (1, 2)]
    assert plan.depth == 2
    assert schema_accepts(text)


def test_a_plan_in_a_code_fence_with_words_around_is_read() -> None:
    text = "Here is the plan:\n```json\n" + plan_json(step(1)) + "\n```\nDone."
    assert isinstance(read_plan(text, AGENTS, LIMITS), Plan)


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ((step(1, "poet"),), "agent 'poet' does not exist (math, facts)"),
        ((step(1), step(2, "math", 2)), "step 2 depends on itself"),
        ((step(1), step(2, "math", 7)), "step 2 depends on step 7, which is not planned"),
        ((step(1), step(1, "facts")), "step id 1 is used more than once"),
        ((step(1, "math", 2), step(2, "math", 1)), "in a circle (1 -> 2 -> 1)"),
        ((step(1), step(2, "math", 1), step(3, "math", 2)), "chains 3 steps one after another"),
        (tuple(step(i) for i in range(1, 6)), "the plan has 5 steps; at most 4"),
    ],
)
def test_every_kind_of_invalid_plan_is_named_and_the_schema_rejects_it(
    steps: tuple[dict[str, object], ...], problem: str
) -> None:
    text = plan_json(*steps)

    problems = read_plan(text, AGENTS, LIMITS)

    assert isinstance(problems, tuple)
    assert any(problem in p for p in problems), problems
    if "chains" not in problem:  # depth is the one limit the schema leaves to the check
        assert not schema_accepts(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("I would ask the math agent first.", "the answer is not JSON"),
        ('{"steps": []}', "plan.steps: Tuple should have at least 1 item"),
        ('{"steps": [{"id": 1, "agent": "math"}]}', "plan.steps[0].instruction: is missing"),
        (
            '{"steps": [{"id": 1, "agent": "math", "instruction": "x", "why": "y"}]}',
            "plan.steps[0].why: is not a field of a plan",
        ),
    ],
)
def test_what_is_not_a_plan_at_all_is_named(text: str, problem: str) -> None:
    problems = read_plan(text, AGENTS, LIMITS)
    assert isinstance(problems, tuple)
    assert any(p.startswith(problem) for p in problems), problems


def test_the_schema_lets_a_step_depend_only_on_earlier_steps_and_numbers_them_in_order() -> None:
    assert schema_accepts(plan_json(step(1), step(2, "facts", 1)))
    assert not schema_accepts(plan_json(step(2), step(1)))  # ids out of order
    assert not schema_accepts(plan_json(step(1, "math", 1)))  # no earlier step to need
    assert not schema_accepts(plan_json(step(1), step(2, "math", 1, 1)))  # repeated


def test_depth_counts_the_longest_chain() -> None:
    steps = [
        PlanStep(id=1, agent="a", instruction="x"),
        PlanStep(id=2, agent="a", instruction="x"),
        PlanStep(id=3, agent="a", instruction="x", depends_on=(1,)),
        PlanStep(id=4, agent="a", instruction="x", depends_on=(3, 2)),
    ]
    assert plan_depth(steps) == 3
    assert plan_depth(steps[:2]) == 1


def test_the_fallback_gives_the_whole_task_to_one_agent() -> None:
    plan = fallback_plan("Part 1: ...\nPart 2: ...", "facts")
    assert plan.steps == (PlanStep(id=1, agent="facts", instruction="Part 1: ...\nPart 2: ..."),)


def test_a_schema_needs_agents() -> None:
    with pytest.raises(ValueError, match="at least one agent"):
        plan_schema((), LIMITS)


def test_an_instruction_naming_an_earlier_step_or_part_depends_on_it() -> None:
    plan = Plan(
        steps=(
            PlanStep(id=1, agent="facts", instruction="What is the symbol of iron?"),
            PlanStep(id=2, agent="math", instruction="Add 2 to the answer to part 1."),
            PlanStep(id=3, agent="math", instruction="Use the result of step 2.", depends_on=(2,)),
            PlanStep(id=4, agent="math", instruction="Unlike step 7 or part 4, this stands."),
        )
    )

    named, notes = with_named_dependencies(plan)

    assert [s.depends_on for s in named.steps] == [(), (1,), (2,), ()]
    assert notes == ("step 2 names step 1 without depending on it: added",)


def test_an_instruction_copying_a_paragraph_of_the_task_gets_the_whole_paragraph() -> None:
    task = (
        "This task has 3 parts.\n\n1. What will prices do?\n\nA. Rise\nB. Fall\n\n"
        "2. Which element has the symbol Fe?\n\n3. Add 2 to the answer to part 1.\n\n"
        "Reply in the form:\n1. <letter>\n2. <a few words>\n3. <number>"
    )
    plan = Plan(
        steps=(
            PlanStep(id=1, agent="facts", instruction="What will prices do?"),  # options lost
            PlanStep(id=2, agent="facts", instruction="Which element has the symbol Fe?\nA. Iron"),
            PlanStep(id=3, agent="math", instruction="Add 2 to the result of step 1."),
        )
    )

    copied, notes = with_task_text(plan, task)

    assert [s.instruction for s in copied.steps] == [
        "What will prices do?\n\nA. Rise\nB. Fall",
        "Which element has the symbol Fe?",
        "Add 2 to the result of step 1.",  # written anew: left as it is
    ]
    assert notes == (
        "step 1's instruction is the task's own text",
        "step 2's instruction is the task's own text",
    )
