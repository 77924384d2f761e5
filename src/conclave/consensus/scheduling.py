"""Running a plan's steps: every step whose dependencies are finished starts at once (up to
`max_parallel`), and the events of the steps running side by side come out as they happen.

A step whose dependencies all failed or were skipped is not asked (there is nothing to work
from) and is recorded as skipped, naming them; a step with some results and some failures is
asked and told which inputs failed (the step runner words that). No new step starts once the
budget is spent: it is recorded as skipped for the budget. Every step of the plan ends with a
`StepFinished`, so the final answer is never written over a silent gap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass

from conclave.consensus.events import StepProgress
from conclave.consensus.planning import Plan, PlanStep
from conclave.consensus.swarm_report import StepResult
from conclave.types import Frozen, Usage


class StepFinished(Frozen):
    """A step's result: the last thing its runner yields."""

    result: StepResult


StepEvent = StepProgress | StepFinished
"""What a step runner yields, and the scheduler with it."""

StepRunner = Callable[[PlanStep, Mapping[int, StepResult]], AsyncGenerator[StepEvent, None]]
"""Runs one step, given the results of the steps it depends on; yields its progress and ends
with exactly one StepFinished."""


@dataclass(frozen=True)
class StepLimits:
    """How many steps run at once, and the budget after which no new step starts."""

    max_parallel: int = 4
    budget_tokens: int | None = None
    budget_usd: float | None = None

    def over_budget(self, spent: Usage) -> str | None:
        """Why no new step may start after `spent`, or None while the budget lasts."""
        if self.budget_tokens is not None and spent.total_tokens >= self.budget_tokens:
            return (
                f"the budget of {self.budget_tokens} tokens was spent "
                f"({spent.total_tokens} used) before this step could start"
            )
        if self.budget_usd is not None and (spent.cost_usd or 0.0) >= self.budget_usd:
            return (
                f"the budget of ${self.budget_usd:g} was spent "
                f"(${spent.cost_usd or 0.0:.4f} used) before this step could start"
            )
        return None


@dataclass(frozen=True)
class _Ended:
    """A step's runner stopped without its StepFinished (it raised)."""

    step: PlanStep
    error: BaseException


async def run_steps(
    plan: Plan,
    run_step: StepRunner,
    limits: StepLimits,
    *,
    spent_before: Usage | None = None,
) -> AsyncGenerator[StepEvent, None]:
    """Run the plan's steps by their dependencies; yield every step's events as they come.

    `spent_before` is what the run used before its steps (the planning calls), counted
    against the budget. A step runner that raises fails its step; the others go on.
    """
    began = time.perf_counter()
    results: dict[int, StepResult] = {}
    started: dict[int, float] = {}
    """When each step started (or was skipped), in seconds from `began`."""
    running: dict[int, asyncio.Task[None]] = {}
    queue: asyncio.Queue[StepEvent | _Ended] = asyncio.Queue()

    async def pump(step: PlanStep, inputs: Mapping[int, StepResult]) -> None:
        ended = False
        try:
            async with aclosing(run_step(step, inputs)) as events:
                async for event in events:
                    if not ended:
                        queue.put_nowait(event)
                    ended = ended or isinstance(event, StepFinished)
        except Exception as exc:  # a runner's bug fails its step, not the run
            if not ended:
                queue.put_nowait(_Ended(step, exc))
            return
        if not ended:
            queue.put_nowait(_Ended(step, RuntimeError("the step ended without a result")))

    def finished(result: StepResult) -> StepFinished:
        results[result.step.id] = result
        return StepFinished(result=result)

    try:
        while len(results) < len(plan.steps):
            for step in plan.steps:
                if step.id in started or any(i not in results for i in step.depends_on):
                    continue
                inputs = {i: results[i] for i in step.depends_on}
                reason = _not_asked(step, inputs) or limits.over_budget(
                    _spent(spent_before or Usage(), results)
                )
                if reason is not None:
                    started[step.id] = time.perf_counter() - began
                    yield finished(_skipped(step, reason, started[step.id]))
                    continue
                if len(running) >= limits.max_parallel:
                    break
                started[step.id] = time.perf_counter() - began
                running[step.id] = asyncio.create_task(pump(step, inputs))
            if len(results) == len(plan.steps):
                break
            if not running:  # pragma: no cover - a valid plan always has a step to start
                raise RuntimeError("no step of the plan can start: its dependencies are invalid")
            item = await queue.get()
            if isinstance(item, _Ended):
                error = f"{type(item.error).__name__}: {item.error}"
                item = StepFinished(result=StepResult(step=item.step, status="failed", error=error))
            if isinstance(item, StepFinished):
                timing = {
                    "started_s": started[item.result.step.id],
                    "finished_s": time.perf_counter() - began,
                }
                item = finished(item.result.model_copy(update=timing))
                task = running.pop(item.result.step.id, None)
                if task is not None:
                    await task
            yield item
    finally:
        for task in running.values():
            task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)


def _not_asked(step: PlanStep, inputs: Mapping[int, StepResult]) -> str | None:
    """Why a step is not worth asking: every step it needs failed or was skipped."""
    if not inputs or any(result.ok for result in inputs.values()):
        return None
    failed = ", ".join(str(i) for i in sorted(inputs))
    return f"every step it needs failed or was skipped (step {failed}), so it had nothing to use"


def _skipped(step: PlanStep, reason: str, at_s: float) -> StepResult:
    """A step never asked: it starts and ends at the moment it was passed over."""
    return StepResult(step=step, status="skipped", error=reason, started_s=at_s, finished_s=at_s)


def _spent(before: Usage, results: Mapping[int, StepResult]) -> Usage:
    return sum((result.usage for result in results.values()), before)
