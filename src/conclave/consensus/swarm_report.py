"""What a swarm run reports, kept in the transcript as its step's typed report: the plan and
how it was obtained (within which limits), and how each step went.

The calls themselves (the orchestrator's, every step's members') are the swarm step's calls in
the transcript, each labelled with its step; this report says what they amounted to.
"""

from __future__ import annotations

from typing import Literal

from conclave.consensus.planning import Plan, PlanLimits, PlanStep
from conclave.types import Frozen, Usage

PlanSource = Literal["first", "repaired", "fallback"]
"""Where the plan used came from: the orchestrator's first answer, its answer to a repair
request, or the one-step fallback (the whole task to one agent) when neither was valid."""

StepStatus = Literal["done", "failed", "skipped"]
"""A step answered; was asked and failed; or was never asked (a limit, or every step it needs
failed), `error` saying why."""


class PlanRecord(Frozen):
    """The plan a swarm ran, how it was obtained, and the limits it had to keep."""

    plan: Plan
    source: PlanSource
    problems: tuple[tuple[str, ...], ...] = ()
    """The problems found in each rejected answer, in order (none when the first was valid)."""
    notes: tuple[str, ...] = ()
    """What was added to the plan used (dependencies its instructions name)."""
    limits: PlanLimits = PlanLimits()

    @property
    def first_valid(self) -> bool:
        """Whether the orchestrator's first answer was a valid plan."""
        return self.source == "first"


class StepResult(Frozen):
    """How one step went."""

    step: PlanStep
    status: StepStatus
    output: str = ""
    error: str | None = None
    members: tuple[str, ...] = ()
    """Who answered for the step's agent."""
    usage: Usage = Usage()
    started_s: float = 0.0
    """Seconds from the start of the steps to this step's start (and to its end, below)."""
    finished_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "done"


class SwarmReport(Frozen):
    """A swarm run's report: its plan, then each step's result in plan order."""

    kind: Literal["swarm"] = "swarm"
    plan: PlanRecord
    steps: tuple[StepResult, ...] = ()

    @property
    def steps_wall_s(self) -> float:
        """Seconds from the first step's start to the last step's end."""
        if not self.steps:
            return 0.0
        return max(s.finished_s for s in self.steps) - min(s.started_s for s in self.steps)

    @property
    def text(self) -> str:
        """The report in a line, for people: the plan's size and source, how its steps went."""
        done = sum(step.ok for step in self.steps)
        source = {"first": "", "repaired": ", repaired", "fallback": ", the one-step fallback"}
        count = len(self.plan.plan.steps)
        return (
            f"plan of {count} step{'s' if count != 1 else ''}{source[self.plan.source]}: "
            f"{done} of {len(self.steps)} done"
        )
