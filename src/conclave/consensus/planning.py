"""The swarm's plan: its JSON schema, reading and checking what the orchestrator wrote, and the
one-step plan that stands in when no valid plan comes.

A plan is a list of steps, each with an id, the agent that does it, a self-contained instruction
and the ids of the earlier steps whose results it needs:

```json
{"steps": [
  {"id": 1, "agent": "facts", "instruction": "What is the capital of Peru?", "depends_on": []},
  {"id": 2, "agent": "math", "instruction": "What is 9 - 5 + 3?", "depends_on": []},
  {"id": 3, "agent": "math", "instruction": "Multiply step 2's result by 4.", "depends_on": [2]}
]}
```

The schema (`plan_schema`) is written so that any JSON satisfying it is a valid plan: step k has
the id k, names one of the agents, and depends only on steps before it, so no id repeats, no
dependency is unknown and no cycle can form; the number of steps is bounded too. Decoding under
that schema (llama.cpp's grammar, a server's structured output) therefore always gives a valid
plan, up to its length in dependency levels, which `read_plan` checks with the rest. Where the
schema could not be enforced, `read_plan` names every problem of what came back, so that the
orchestrator can be asked to repair it.
"""

from __future__ import annotations

import graphlib
import json
import re
from collections.abc import Mapping, Sequence

from pydantic import Field, JsonValue, ValidationError

from conclave.consensus.answers import named_parts
from conclave.types import Frozen, JsonSchema

PLAN_SCHEMA_NAME = "swarm_plan"

_FENCED = re.compile(r"```(?:json)?\s*\n?(.*?)\n?```", re.DOTALL)


class PlanStep(Frozen):
    """One step: `agent` carries out `instruction`, seeing the results of `depends_on`."""

    id: int = Field(ge=1)
    agent: str = Field(min_length=1)
    instruction: str = Field(min_length=1)
    depends_on: tuple[int, ...] = ()


class Plan(Frozen):
    """The steps of a swarm run, in the order the orchestrator wrote them."""

    steps: tuple[PlanStep, ...] = Field(min_length=1)

    @property
    def depth(self) -> int:
        """The most steps that must run one after another (the longest dependency chain)."""
        return plan_depth(self.steps)


class PlanLimits(Frozen):
    """What a plan may ask for."""

    max_steps: int = Field(default=6, ge=1, le=16)
    max_depth: int = Field(default=3, ge=1, le=16)
    """The longest chain of steps each waiting for the one before."""


def plan_schema(agents: Sequence[str], limits: PlanLimits) -> JsonSchema:
    """The JSON Schema of a valid plan for these agents within `limits.max_steps`: one of
    `max_steps` array shapes, shape n listing n steps whose ids are 1..n in order and whose
    dependencies are earlier ids only (so any JSON it accepts has no cycle and no unknown id)."""
    if not agents:
        raise ValueError("a plan needs at least one agent")
    agent_names: list[JsonValue] = list(dict.fromkeys(agents))
    steps: list[JsonValue] = [
        _shape(count, agent_names) for count in range(1, limits.max_steps + 1)
    ]
    schema: dict[str, JsonValue] = {
        "type": "object",
        "properties": {"steps": {"anyOf": steps}},
        "required": ["steps"],
        "additionalProperties": False,
    }
    return JsonSchema.of(PLAN_SCHEMA_NAME, schema)


def _shape(count: int, agents: list[JsonValue]) -> dict[str, JsonValue]:
    items: list[JsonValue] = [_step_schema(number, agents) for number in range(1, count + 1)]
    return {
        "type": "array",
        "prefixItems": items,
        "items": False,
        "minItems": count,
        "maxItems": count,
    }


def _step_schema(number: int, agents: list[JsonValue]) -> dict[str, JsonValue]:
    earlier: list[JsonValue] = list(range(1, number))
    depends_on: dict[str, JsonValue] = {"const": []}
    if earlier:
        depends_on = {
            "type": "array",
            "items": {"enum": earlier},
            "maxItems": len(earlier),
            "uniqueItems": True,
        }
    return {
        "type": "object",
        "properties": {
            "id": {"const": number},
            "agent": {"enum": agents},
            "instruction": {"type": "string", "minLength": 1},
            "depends_on": depends_on,
        },
        "required": ["id", "agent", "instruction", "depends_on"],
        "additionalProperties": False,
    }


def read_plan(text: str, agents: Sequence[str], limits: PlanLimits) -> Plan | tuple[str, ...]:
    """The plan `text` holds (JSON, or JSON in a code fence), or every problem that makes it
    no valid plan for these agents within `limits`."""
    data = _json_in(text)
    if data is None:
        return ("the answer is not JSON: write only the JSON object of the plan",)
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        return tuple(_shape_problem(error) for error in exc.errors(include_url=False))
    problems = plan_problems(plan, agents, limits)
    return problems or plan


def plan_problems(plan: Plan, agents: Sequence[str], limits: PlanLimits) -> tuple[str, ...]:
    """Why `plan` is not a valid plan for these agents within `limits` (nothing when it is)."""
    problems: list[str] = []
    if len(plan.steps) > limits.max_steps:
        problems.append(f"the plan has {len(plan.steps)} steps; at most {limits.max_steps}")
    ids = [step.id for step in plan.steps]
    for repeated in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"step id {repeated} is used more than once")
    known = ", ".join(agents)
    for step in plan.steps:
        if step.agent not in agents:
            problems.append(f"step {step.id}: agent {step.agent!r} does not exist ({known})")
        for needed in step.depends_on:
            if needed == step.id:
                problems.append(f"step {step.id} depends on itself")
            elif needed not in ids:
                problems.append(f"step {step.id} depends on step {needed}, which is not planned")
    if problems:
        return tuple(problems)
    cycle = _cycle(plan.steps)
    if cycle:
        shown = " -> ".join(str(i) for i in cycle)
        return (f"steps depend on each other in a circle ({shown}): nothing could start",)
    depth = plan.depth
    if depth > limits.max_depth:
        return (
            f"the plan chains {depth} steps one after another; at most {limits.max_depth}: "
            "let independent steps depend on nothing",
        )
    return ()


def with_task_text(plan: Plan, task: str) -> tuple[Plan, tuple[str, ...]]:
    """The plan with each instruction that copies a paragraph of the task (its first line the
    same, once a "Part 2:" or "2." label is set aside) replaced by that paragraph as the task
    writes it, and a note per instruction restored: small planners cut a copy short (leaving
    out a question's options) or run on (adding options it does not have)."""
    paragraphs = {_first_line_key(p): p for p in (_unlabelled(p) for p in _paragraphs(task))}
    steps: list[PlanStep] = []
    notes: list[str] = []
    for step in plan.steps:
        source = paragraphs.get(_first_line_key(_unlabelled(step.instruction)))
        if source and source != step.instruction.strip():
            step = step.model_copy(update={"instruction": source})
            notes.append(f"step {step.id}'s instruction is the task's own text")
        steps.append(step)
    return Plan(steps=tuple(steps)), tuple(notes)


_PARAGRAPHS = re.compile(r"\n\s*\n")
_OPTION = re.compile(r"^\s*[A-Z][.)]\s")


def _paragraphs(task: str) -> list[str]:
    """The task's paragraphs, a block of lettered options ("A. ...") kept with the question
    before it."""
    found: list[str] = []
    for paragraph in _PARAGRAPHS.split(task.strip()):
        lines = paragraph.strip().splitlines()
        if found and lines and all(_OPTION.match(line) for line in lines):
            found[-1] = f"{found[-1]}\n\n{paragraph.strip()}"
        else:
            found.append(paragraph.strip())
    return found


_LABEL = re.compile(r"^\s*(?:(?:part|question|task|step)\s*\d+|\d+)\s*[:.)]\s*", re.IGNORECASE)


def _unlabelled(text: str) -> str:
    return _LABEL.sub("", text.strip(), count=1).strip()


def _first_line_key(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return " ".join(first.lower().split())


def with_named_dependencies(plan: Plan) -> tuple[Plan, tuple[str, ...]]:
    """The plan with each step also depending on the earlier steps its instruction names by
    number ("the result of step 1", or "the answer to part 1" for a task of numbered parts,
    whose parts the planner is shown turning into steps in order), and a note per dependency
    added: small planners copy such an instruction and leave its depends_on empty, and the
    step's agent then has nothing to use."""
    steps: list[PlanStep] = []
    notes: list[str] = []
    for step in plan.steps:
        named = named_parts(step.instruction)
        missing = [n for n in named if n < step.id and n not in step.depends_on]
        missing = [n for n in missing if any(s.id == n for s in plan.steps)]
        if missing:
            step = step.model_copy(update={"depends_on": (*step.depends_on, *missing)})
            shown = ", ".join(map(str, missing))
            notes.append(f"step {step.id} names step {shown} without depending on it: added")
        steps.append(step)
    return Plan(steps=tuple(steps)), tuple(notes)


def plan_depth(steps: Sequence[PlanStep]) -> int:
    """The longest chain of dependent steps (1 for steps that all run at once); the steps must
    form no cycle."""
    by_id = {step.id: step for step in steps}
    levels: dict[int, int] = {}
    for step_id in graphlib.TopologicalSorter(_graph(steps)).static_order():
        needed = by_id[step_id].depends_on
        levels[step_id] = 1 + max((levels[i] for i in needed), default=0)
    return max(levels.values(), default=0)


def fallback_plan(task: str, agent: str) -> Plan:
    """The plan used when the orchestrator gave no valid one: the whole task to one agent."""
    return Plan(steps=(PlanStep(id=1, agent=agent, instruction=task),))


def _graph(steps: Sequence[PlanStep]) -> dict[int, tuple[int, ...]]:
    return {step.id: step.depends_on for step in steps}


def _cycle(steps: Sequence[PlanStep]) -> tuple[int, ...]:
    try:
        graphlib.TopologicalSorter(_graph(steps)).prepare()
    except graphlib.CycleError as exc:
        found: list[int] = exc.args[1]
        return tuple(found)
    return ()


def _json_in(text: str) -> object | None:
    candidates = [text.strip(), *(block.strip() for block in _FENCED.findall(text))]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            # strict=False: a server's grammar may let a raw newline into a string
            found: object = json.loads(candidate, strict=False)
        except ValueError:
            continue
        return found
    return None


def _shape_problem(error: Mapping[str, object]) -> str:
    location = error.get("loc", ())
    parts = location if isinstance(location, tuple) else ()
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if error.get("type") == "missing":
        message = "is missing"
    elif error.get("type") == "extra_forbidden":
        message = "is not a field of a plan (steps: id, agent, instruction, depends_on)"
    return f"plan{where}: {message}"
