"""Running a plan's steps: at once where the plan allows, in order where it does not, failures
reported to their dependants, and the limits on parallel steps and on the budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping

import pytest

from conclave.consensus.events import StepProgress
from conclave.consensus.planning import Plan, PlanStep
from conclave.consensus.scheduling import StepEvent, StepFinished, StepLimits, run_steps
from conclave.consensus.swarm_report import StepResult
from conclave.types import Usage


def started(step: PlanStep) -> StepProgress:
    return StepProgress(step="swarm", name=f"step {step.id}", status="started")


def plan(*steps: tuple[int, tuple[int, ...]]) -> Plan:
    return Plan(
        steps=tuple(
            PlanStep(id=i, agent="a", instruction=f"step {i}", depends_on=deps) for i, deps in steps
        )
    )


class Runner:
    """Steps that take `delay_s`, fail when listed in `failing`, and note what they saw."""

    def __init__(
        self,
        *,
        delay_s: float = 0.01,
        failing: frozenset[int] = frozenset(),
        tokens: int = 10,
    ) -> None:
        self.delay_s = delay_s
        self.failing = failing
        self.tokens = tokens
        self.running = 0
        self.most_at_once = 0
        self.inputs: dict[int, dict[int, str]] = {}

    async def __call__(
        self, step: PlanStep, inputs: Mapping[int, StepResult]
    ) -> AsyncGenerator[StepEvent, None]:
        self.inputs[step.id] = {i: result.status for i, result in inputs.items()}
        yield started(step)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.running -= 1
        usage = Usage(prompt_tokens=self.tokens)
        if step.id in self.failing:
            result = StepResult(step=step, status="failed", error="boom", usage=usage)
        else:
            result = StepResult(step=step, status="done", output=f"out {step.id}", usage=usage)
        yield StepFinished(result=result)


async def results_of(
    events: AsyncGenerator[StepEvent, None],
) -> tuple[list[StepEvent], dict[int, StepResult]]:
    seen = [event async for event in events]
    finished = {e.result.step.id: e.result for e in seen if isinstance(e, StepFinished)}
    return seen, finished


async def test_independent_steps_run_at_once_and_a_dependant_after_them() -> None:
    runner = Runner(delay_s=0.05)

    events, results = await results_of(
        run_steps(plan((1, ()), (2, ()), (3, (1, 2))), runner, StepLimits())
    )

    assert runner.most_at_once == 2
    order = [type(e).__name__ for e in events]
    third_started = next(i for i, e in enumerate(events) if _started(e, 3))
    assert all(_finished_before(events, i, third_started) for i in (1, 2)), order
    assert runner.inputs[3] == {1: "done", 2: "done"}
    assert all(result.ok for result in results.values())
    first, second = results[1], results[2]
    assert second.started_s < first.finished_s  # their times overlap
    assert results[3].started_s >= max(first.finished_s, second.finished_s)


def _started(event: StepEvent, step: int) -> bool:
    return isinstance(event, StepProgress) and event.name == f"step {step}"


def _finished_before(events: list[StepEvent], step: int, index: int) -> bool:
    return any(isinstance(e, StepFinished) and e.result.step.id == step for e in events[:index])


async def test_a_step_whose_every_input_failed_is_skipped_naming_them() -> None:
    runner = Runner(failing=frozenset({1}))

    _, results = await results_of(
        run_steps(plan((1, ()), (2, (1,)), (3, (2,))), runner, StepLimits())
    )

    assert results[1].status == "failed"
    assert results[2].status == "skipped"
    assert "step 1" in (results[2].error or "")
    assert results[3].status == "skipped"  # and so on down the chain
    assert set(runner.inputs) == {1}  # neither was asked


async def test_a_step_with_some_inputs_failed_is_asked_and_sees_which() -> None:
    runner = Runner(failing=frozenset({1}))

    _, results = await results_of(
        run_steps(plan((1, ()), (2, ()), (3, (1, 2))), runner, StepLimits())
    )

    assert results[3].ok
    assert runner.inputs[3] == {1: "failed", 2: "done"}


async def test_at_most_max_parallel_steps_run_at_once() -> None:
    runner = Runner(delay_s=0.02)
    steps = plan(*((i, ()) for i in range(1, 6)))

    _, results = await results_of(run_steps(steps, runner, StepLimits(max_parallel=2)))

    assert runner.most_at_once == 2
    assert len(results) == 5


async def test_no_step_starts_once_the_token_budget_is_spent() -> None:
    runner = Runner(tokens=60)
    limits = StepLimits(max_parallel=1, budget_tokens=100)

    _, results = await results_of(
        run_steps(
            plan((1, ()), (2, ()), (3, ())),
            runner,
            limits,
            spent_before=Usage(completion_tokens=30),
        )
    )

    assert [results[i].status for i in (1, 2, 3)] == ["done", "done", "skipped"]
    assert "budget of 100 tokens was spent (150 used)" in (results[3].error or "")


async def test_the_cost_budget_counts_too() -> None:
    limits = StepLimits(budget_usd=0.01)
    spent = Usage(cost_usd=0.02)

    _, results = await results_of(run_steps(plan((1, ())), Runner(), limits, spent_before=spent))

    assert results[1].status == "skipped"
    assert "budget of $0.01" in (results[1].error or "")


async def test_a_runner_that_raises_fails_its_step_only() -> None:
    async def runner(
        step: PlanStep, inputs: Mapping[int, StepResult]
    ) -> AsyncGenerator[StepEvent, None]:
        if step.id == 1:
            raise RuntimeError("a bug")
        yield StepFinished(result=StepResult(step=step, status="done", output="x"))

    _, results = await results_of(run_steps(plan((1, ()), (2, ())), runner, StepLimits()))

    assert results[1].status == "failed"
    assert results[1].error == "RuntimeError: a bug"
    assert results[2].ok


async def test_a_runner_ending_without_a_result_fails_its_step() -> None:
    async def runner(
        step: PlanStep, inputs: Mapping[int, StepResult]
    ) -> AsyncGenerator[StepEvent, None]:
        yield started(step)

    _, results = await results_of(run_steps(plan((1, ())), runner, StepLimits()))

    assert results[1].status == "failed"
    assert "ended without a result" in (results[1].error or "")


async def test_closing_the_stream_early_cancels_the_running_steps() -> None:
    cancelled: list[int] = []

    async def runner(
        step: PlanStep, inputs: Mapping[int, StepResult]
    ) -> AsyncGenerator[StepEvent, None]:
        yield started(step)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(step.id)
            raise
        yield StepFinished(result=StepResult(step=step, status="done"))

    events = run_steps(plan((1, ()), (2, ())), runner, StepLimits())
    first = await anext(events)
    await events.aclose()

    assert isinstance(first, StepProgress)
    assert sorted(cancelled) == [1, 2]


@pytest.mark.parametrize("parallel", [1, 3])
async def test_every_step_ends_with_one_result(parallel: int) -> None:
    steps = plan((1, ()), (2, (1,)), (3, ()), (4, (2, 3)))
    events, _ = await results_of(run_steps(steps, Runner(), StepLimits(max_parallel=parallel)))
    finished = [e.result.step.id for e in events if isinstance(e, StepFinished)]
    assert sorted(finished) == [1, 2, 3, 4]
