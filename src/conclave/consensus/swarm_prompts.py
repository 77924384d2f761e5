"""The messages of a swarm run: the orchestrator's planning request (and the repair request when
its plan cannot be used), each step's request to its agent, and the orchestrator's request to
write the final answer from the steps' results.

They are short and direct, for small models: the agents are listed one per line with what
they do; a step's agent sees only its instruction and the results it depends on (given the
whole task, small models answered every part of it, in the task's form, where their role asked
them to work one out); the orchestrator writing the answer sees the user's whole conversation
(so the form the user asked for reaches it) and every step's result, a failed step named as
failed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import Field

from conclave.consensus.answers import final_answer
from conclave.consensus.planning import Plan, PlanLimits, PlanStep
from conclave.consensus.swarm_report import StepResult
from conclave.types import Frozen, Message


@dataclass(frozen=True)
class AgentBrief:
    """What the orchestrator is told of an agent."""

    name: str
    description: str


class PlanExample(Frozen):
    """A task and the plan the orchestrator should make of it, shown before the real task."""

    task: str = Field(min_length=1)
    plan: Plan


PLANNER_PROMPT = """You are the orchestrator of a team of agents. Split the user's task into \
steps and give each step to the agent best suited to it. You do not solve anything yourself: \
the agents do.

Agents:
{agents}

Each step has an id (1, 2, 3, ...), an agent, an instruction and depends_on. The agent sees \
only its instruction and the results of the steps in its depends_on, so copy into the \
instruction the part of the task the step does, word for word, with its numbers and its \
options if it has any (never add options it does not have). A step that needs an earlier \
part's answer lists the step of that part in depends_on and says which result it uses ("the \
result of step 1"). Steps that do not need each other depend on nothing, so that they run at \
the same time. Every part of the task gets a step. Use at most {max_steps} steps.

Reply with the plan as JSON only: {{"steps": [{{"id": 1, "agent": "...", "instruction": \
"...", "depends_on": []}}]}}"""

REPAIR_PROMPT = """That plan cannot be used:
{problems}
Write the whole plan again as JSON, with these fixed."""

SYNTHESIS_PROMPT = """You are the orchestrator of a team of agents. They have worked on the \
user's task step by step; their results are given after the task. Write the final answer to \
the task from those results, in the form the task asks for: take each result as it is, \
without working it out again. Where a step failed, say that part could not be answered \
rather than invent its result."""

STEP_INPUTS_HEADER = "Results of earlier steps you can use:"


def planning_messages(
    agents: Sequence[AgentBrief],
    conversation: Sequence[Message],
    limits: PlanLimits,
    examples: Sequence[PlanExample] = (),
) -> tuple[Message, ...]:
    """The orchestrator's request for a plan of the task `conversation` ends on, after the
    worked examples (each a task and its plan, as earlier turns)."""
    listed = "\n".join(f"- {agent.name}: {agent.description}" for agent in agents)
    system = PLANNER_PROMPT.format(agents=listed, max_steps=limits.max_steps)
    shown: list[Message] = []
    for example in examples:
        shown.append(Message(role="user", content=example.task))
        shown.append(Message(role="assistant", content=example.plan.model_dump_json()))
    return (
        Message(role="system", content=system),
        *shown,
        Message(role="user", content=task_text(conversation)),
    )


def repair_messages(
    asked: Sequence[Message], answer: str, problems: Sequence[str]
) -> tuple[Message, ...]:
    """The planning request again, with the unusable plan and what is wrong with it."""
    listed = "\n".join(f"- {problem}" for problem in problems)
    return (
        *asked,
        Message(role="assistant", content=answer),
        Message(role="user", content=REPAIR_PROMPT.format(problems=listed)),
    )


def step_messages(
    role: str, step: PlanStep, inputs: Mapping[int, StepResult]
) -> tuple[Message, ...]:
    """What a step's agent is asked: its role, then the results it depends on and its
    instruction."""
    parts = []
    if inputs:
        shown = "\n".join(_result_line(inputs[i]) for i in sorted(inputs))
        parts.append(f"{STEP_INPUTS_HEADER}\n{shown}")
    parts.append(step.instruction.strip())
    return (Message(role="system", content=role), Message(role="user", content="\n\n".join(parts)))


def synthesis_messages(
    conversation: Sequence[Message], results: Sequence[StepResult]
) -> tuple[Message, ...]:
    """The orchestrator's request to answer the task from the steps' results."""
    shown = "\n".join(_result_line(result) for result in results)
    closing = f"Results of the steps:\n{shown}\n\nNow write the final answer to the task."
    return (
        Message(role="system", content=SYNTHESIS_PROMPT),
        *conversation,
        Message(role="user", content=closing),
    )


def task_text(conversation: Sequence[Message]) -> str:
    """The task a conversation sets: its last user message, after the system instructions and
    earlier turns it comes with."""
    if len(conversation) == 1:
        return conversation[0].content
    lines = [f"{_SPEAKERS[message.role]}: {message.content}" for message in conversation]
    return "\n\n".join(lines)


_SPEAKERS = {"system": "Instructions", "user": "User", "assistant": "Assistant"}


def result_text(result: StepResult) -> str:
    """A step's result as other steps and the orchestrator see it: what a worked answer
    concludes ("Answer: ...", else the last `\\boxed{...}`, which Qwen models write), else
    its whole text."""
    concluded = final_answer(result.output)
    if concluded == result.output:
        boxed = _BOXED.findall(result.output)
        concluded = boxed[-1] if boxed else concluded
    return concluded.strip()


_BOXED = re.compile(r"\\boxed\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")


def _result_line(result: StepResult) -> str:
    step = result.step
    heading = f"Step {step.id} ({step.agent}: {step.instruction.strip()})"
    if result.ok:
        return f"{heading}: {result_text(result)}"
    return f"{heading}: FAILED, no result ({result.error or result.status})"
