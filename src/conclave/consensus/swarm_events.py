"""What a swarm run records and reports: the plan and how it was obtained, each step's start,
members and result. The engine forwards these events like its own, and the transcript keeps
them, so every interface shows a swarm run from the one event stream.

A swarm run's stream is: `SwarmPlanned`, then for each step (several at once where the plan
allows) `StepStarted`, `StepMember`* (its members' answers as they come), `StepFinished`;
then the orchestrator's answer as the round's `AggregateDelta`* and `AggregateFinished`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from conclave.consensus.planning import Plan, PlanLimits, PlanStep
from conclave.consensus.transcript import CallRecord, Transcript
from conclave.types import Frozen, Usage

PlanSource = Literal["first", "repaired", "fallback"]
"""Where the plan used came from: the orchestrator's first answer, its answer to a repair
request, or the one-step fallback (the whole task to one agent) when neither was valid."""

StepStatus = Literal["done", "failed", "skipped"]
"""A step answered; was asked and failed; or was never asked (a limit, or every step it needs
failed), `error` saying why."""


class PlanRecord(Frozen):
    """The plan a swarm ran, and every call it took to get it."""

    plan: Plan
    source: PlanSource
    problems: tuple[tuple[str, ...], ...] = ()
    """The problems found in each rejected answer, in order (none when the first was valid)."""
    calls: tuple[CallRecord, ...] = ()
    """The orchestrator's planning calls: the first, then any repair."""
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
    """Seconds from the start of the steps to this step's start (and its end below)."""
    finished_s: float = 0.0
    transcript: Transcript | None = Field(default=None, repr=False)
    """The step's own consensus run (none for a step never asked)."""

    @property
    def ok(self) -> bool:
        return self.status == "done"

    @property
    def calls(self) -> tuple[CallRecord, ...]:
        if self.transcript is None:
            return ()
        return tuple(call for _, call in self.transcript.calls())


class SwarmPlanned(Frozen):
    kind: Literal["swarm_planned"] = "swarm_planned"
    round: int
    record: PlanRecord


class StepStarted(Frozen):
    kind: Literal["step_started"] = "step_started"
    round: int
    step: PlanStep
    members: tuple[str, ...]


class StepMember(Frozen):
    """A member of a step's panel answered (or failed)."""

    kind: Literal["step_member"] = "step_member"
    round: int
    step: int
    response: CallRecord


class StepFinished(Frozen):
    kind: Literal["step_finished"] = "step_finished"
    round: int
    result: StepResult


SwarmEvent = SwarmPlanned | StepStarted | StepMember | StepFinished
"""What the swarm adds to a run's events."""
