"""The `swarm` strategy driven by the shipped fakes: planning under the schema, repair, the
fallback plan, steps run by their dependencies (each its own consensus), step failures, the
limits, the answer, and what the events and the transcript keep."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence

import pytest

from conclave.config import ConsensusConfig, parse_config
from conclave.consensus.events import (
    AggregateDelta,
    ConsensusDone,
    ConsensusEvent,
    StepProgress,
)
from conclave.consensus.swarm_report import SwarmReport
from conclave.consensus.transcript import Transcript
from conclave.errors import ConfigError, ProviderHTTPError
from conclave.providers.testing import FakeModel, FunctionModel, RecordedCall
from conclave.types import Message, SamplingOptions
from test_engine import make_config, make_engine

Fakes = dict[str, FakeModel | FunctionModel]
TASK = (Message(role="user", content="Part 1: 6 * 7?\nPart 2: Capital of Peru?\nPart 3: Add 1."),)

AGENTS = [
    {
        "name": "math",
        "description": "numbers",
        "role": "You do maths.",
        "models": ["m1"],
    },
    {
        "name": "facts",
        "description": "facts",
        "role": "You know facts.",
        "models": ["m1", "m2"],
        "strategy": "vote",
    },
]


def step(id: int, agent: str, *depends_on: int) -> dict[str, object]:
    return {
        "id": id,
        "agent": agent,
        "instruction": f"Answer part {id}.",
        "depends_on": list(depends_on),
    }


def plan_text(*steps: dict[str, object]) -> str:
    return json.dumps({"steps": list(steps)})


GOOD_PLAN = plan_text(step(1, "math"), step(2, "facts"), step(3, "math", 1))


def swarm_config(**options: object) -> ConsensusConfig:
    block: dict[str, object] = {"agents": AGENTS, **options}
    return make_config(["m1", "m2"], "orc", strategy="swarm", strategy_options=block)


def last_user(messages: Sequence[Message]) -> str:
    return next(m.content for m in reversed(messages) if m.role == "user")


def instruction_of(messages: Sequence[Message]) -> str:
    """The step's instruction in a step's request: after the results it uses, if any."""
    return last_user(messages).split("\n\n")[-1]


def orchestrator(*plans: str | BaseException, answer: str = "FINAL ANSWER") -> FunctionModel:
    """Plans in turn when asked under a schema; otherwise writes `answer`."""
    queued = list(plans)

    def respond(messages: Sequence[Message], options: SamplingOptions) -> str:
        if options.json_schema is None:
            return answer
        planned = queued.pop(0)
        if isinstance(planned, BaseException):
            raise planned
        return planned

    return FunctionModel(respond)


def agent_model(name: str, latency_s: float = 0.0) -> FunctionModel:
    """Answers with its name and the step it was given."""

    def respond(messages: Sequence[Message], options: SamplingOptions) -> str:
        return f"{name} answers {instruction_of(messages)}"

    return FunctionModel(respond, latency_s=latency_s)


def fakes(orc: FunctionModel, latency_s: float = 0.0) -> Fakes:
    return {"m1": agent_model("m1", latency_s), "m2": agent_model("m2", latency_s), "orc": orc}


Run = tuple[Transcript, list[ConsensusEvent]]


async def run_swarm(config: ConsensusConfig, models: Fakes) -> Run:
    events = [event async for event in make_engine(config, models).run(TASK)]
    done = events[-1]
    assert isinstance(done, ConsensusDone)
    return done.transcript, events


def report_of(transcript: Transcript) -> SwarmReport:
    [record] = transcript.rounds[0].steps
    assert isinstance(record.report, SwarmReport)
    return record.report


def planning_calls(orc: FunctionModel) -> list[RecordedCall]:
    return [call for call in orc.history if call.options.json_schema is not None]


async def test_a_plan_runs_its_steps_by_their_dependencies_and_the_orchestrator_answers() -> None:
    orc = orchestrator(GOOD_PLAN)
    models = fakes(orc, latency_s=0.05)

    transcript, events = await run_swarm(swarm_config(), models)

    assert transcript.answer == "FINAL ANSWER"
    report = report_of(transcript)
    assert report.plan.source == "first"
    assert report.plan.first_valid
    assert [(r.step.id, r.status) for r in report.steps] == [(1, "done"), (2, "done"), (3, "done")]
    one, two, three = report.steps
    assert two.started_s < one.finished_s  # independent steps ran side by side
    assert three.started_s >= one.finished_s  # step 3 waited for the result it needs
    step_three = next(c for c in models["m1"].history if "Answer part 3." in last_user(c.messages))
    assert "Step 1 (math: Answer part 1.): m1 answers Answer part 1." in last_user(
        step_three.messages
    )
    assert step_three.messages[0] == Message(role="system", content="You do maths.")
    # the planning call was constrained to the plan's schema; the answer sees every result
    [planned] = planning_calls(orc)
    assert planned.options.json_schema is not None
    assert planned.options.json_schema.name == "swarm_plan"
    synthesis = orc.history[-1]
    assert synthesis.options.json_schema is None
    assert "Step 2 (facts: Answer part 2.)" in last_user(synthesis.messages)
    assert synthesis.messages[1:2] == TASK
    # the round asked no panel member: every call is the swarm step's, each labelled
    record = transcript.rounds[0]
    assert record.responses == ()
    labels = [call.model for call in record.steps[0].calls]
    assert labels[0] == "orc (aggregator) (planner)"
    assert "step 2 facts: m1" in labels
    assert "step 2 facts: m2" in labels  # facts is a panel of two, voting
    assert transcript.usage == sum(
        (c.usage for _, c in transcript.calls()), type(transcript.usage)()
    )
    progress = [e for e in events if isinstance(e, StepProgress)]
    assert progress[0].name == "plan"
    assert isinstance(progress[0].report, SwarmReport)
    assert {(e.name, e.status) for e in progress} >= {
        ("step 1", "started"),
        ("step 1", "finished"),
        ("step 3", "finished"),
    }


async def test_a_plan_that_cannot_be_used_is_repaired_with_its_problems_named() -> None:
    cyclic = plan_text(step(1, "math", 2), step(2, "facts", 1))
    orc = orchestrator(cyclic, GOOD_PLAN)

    transcript, events = await run_swarm(swarm_config(), fakes(orc))

    report = report_of(transcript)
    assert report.plan.source == "repaired"
    assert not report.plan.first_valid
    assert "in a circle" in report.plan.problems[0][0]
    _, repair = planning_calls(orc)
    assert repair.messages[-2] == Message(role="assistant", content=cyclic)
    assert "in a circle (1 -> 2 -> 1)" in repair.messages[-1].content
    failed = [e for e in events if isinstance(e, StepProgress) and e.status == "failed"]
    assert failed[0].name == "plan"
    assert len(report.steps) == 3


async def test_no_valid_plan_after_repair_falls_back_to_the_whole_task_for_one_agent() -> None:
    orc = orchestrator("no plan at all", plan_text(step(1, "poet")))

    transcript, _ = await run_swarm(swarm_config(fallback_agent="facts"), fakes(orc))

    report = report_of(transcript)
    assert report.plan.source == "fallback"
    assert len(report.plan.problems) == 2
    assert "agent 'poet' does not exist" in report.plan.problems[1][0]
    [only] = report.plan.plan.steps
    assert (only.agent, only.instruction) == ("facts", TASK[0].content)
    assert report.steps[0].ok
    assert transcript.answer == "FINAL ANSWER"


async def test_a_failing_orchestrator_falls_back_at_once_without_a_repair_request() -> None:
    orc = orchestrator(ProviderHTTPError("down", status_code=503))

    transcript, _ = await run_swarm(swarm_config(repair_attempts=2), fakes(orc))

    report = report_of(transcript)
    assert report.plan.source == "fallback"
    assert "the call failed" in report.plan.problems[0][0]
    assert len(planning_calls(orc)) == 1
    assert report.plan.plan.steps[0].agent == "math"  # the first agent by default


async def test_a_failed_step_is_reported_and_its_dependants_are_told() -> None:
    plan = plan_text(step(1, "math"), step(2, "facts"), step(3, "math", 1), step(4, "facts", 1, 2))
    models = fakes(orchestrator(plan))

    def m1(messages: Sequence[Message], options: SamplingOptions) -> str:
        if instruction_of(messages) == "Answer part 1.":
            raise ProviderHTTPError("m1 is down", status_code=500)
        return "fine"

    models["m1"] = FunctionModel(m1)

    transcript, events = await run_swarm(swarm_config(), models)

    results = {r.step.id: r for r in report_of(transcript).steps}
    assert results[1].status == "failed"
    assert "m1 is down" in (results[1].error or "")
    assert results[3].status == "skipped"  # it needed step 1 only
    assert "step 1" in (results[3].error or "")
    assert results[4].ok  # it had step 2's result, and was told step 1 failed
    told = next(c for c in models["m2"].history if "Answer part 4." in last_user(c.messages))
    assert "Step 1 (math: Answer part 1.): FAILED" in last_user(told.messages)
    synthesis = last_user(orchestrator_history(models)[-1].messages)
    assert "Step 3 (math: Answer part 3.): FAILED, no result (every step it needs" in synthesis
    ends = {e.name: e.status for e in events if isinstance(e, StepProgress) and e.name != "plan"}
    assert ends["step 1"] == "failed"
    assert ends["step 3"] == "failed"


def orchestrator_history(models: Fakes) -> list[RecordedCall]:
    return models["orc"].history


async def test_no_step_starts_once_the_token_budget_is_spent() -> None:
    plan = plan_text(step(1, "math"), step(2, "math", 1), step(3, "math", 2))
    models = fakes(orchestrator(plan))

    planning_tokens = 1 + len(plan.split())  # what the fakes count for the plan's call
    budget = planning_tokens + 1  # room for the first step to start, not for the next

    transcript, _ = await run_swarm(swarm_config(budget_tokens=budget, max_depth=3), models)

    statuses = [(r.status, r.error) for r in report_of(transcript).steps]
    assert statuses[0][0] == "done"
    assert all(status == "skipped" for status, _ in statuses[1:])
    assert f"budget of {budget} tokens was spent" in (statuses[1][1] or "")


async def test_a_plan_over_the_step_or_depth_limit_is_sent_back() -> None:
    too_long = plan_text(*(step(i, "math") for i in range(1, 5)))
    too_deep = plan_text(step(1, "math"), step(2, "math", 1), step(3, "math", 2))
    orc = orchestrator(too_long, too_deep)

    transcript, _ = await run_swarm(swarm_config(max_steps=3, max_depth=2), fakes(orc))

    report = report_of(transcript)
    assert report.plan.source == "fallback"
    assert "the plan has 4 steps; at most 3" in report.plan.problems[0][0]
    assert "chains 3 steps one after another; at most 2" in report.plan.problems[1][0]
    schema = planning_calls(orc)[0].options.json_schema
    assert schema is not None
    assert '"maxItems":3' in schema.text  # the schema itself bounds the steps


async def test_at_most_max_parallel_steps_run_at_once() -> None:
    plan = plan_text(step(1, "math"), step(2, "math"), step(3, "math"))
    models = fakes(orchestrator(plan), latency_s=0.05)

    transcript, _ = await run_swarm(swarm_config(max_parallel=1), models)

    steps = report_of(transcript).steps
    for before, after in itertools.pairwise(steps):
        assert after.started_s >= before.finished_s


async def test_the_answer_streams_and_a_fallback_writes_it_when_the_orchestrator_fails() -> None:
    orc = FunctionModel(
        lambda messages, options: (
            GOOD_PLAN
            if options.json_schema is not None
            else ProviderHTTPError("orchestrator down", status_code=500)
        )
    )
    models = fakes(orc)
    models["spare"] = FakeModel(default="the spare writes it")
    config = swarm_config().with_changes(
        fallback_aggregator={"id": "spare", "max_tokens": 50, "temperature": 0}
    )

    transcript, events = await run_swarm(config, models)

    assert transcript.answer == "the spare writes it"
    assert transcript.rounds[0].decided_by == "fallback_aggregator"
    assert "".join(e.text for e in events if isinstance(e, AggregateDelta)) == "the spare writes it"
    assert "Step 1 (math: Answer part 1.)" in last_user(models["spare"].history[0].messages)


async def test_a_config_naming_no_agents_gets_one_agent_answered_by_all_its_models() -> None:
    config = make_config(["m1", "m2"], "orc", strategy="swarm")
    plan = plan_text(step(1, "assistant"))
    models = fakes(orchestrator(plan, answer="done"))

    transcript, _ = await run_swarm(config, models)

    assert transcript.answer == "done"
    labels = {call.model for call in transcript.rounds[0].steps[0].calls}
    assert {"step 1 assistant: m1", "step 1 assistant: m2"} <= labels
    assert "step 1 assistant: orc (aggregator)" in labels  # flare: the orchestrator combines


async def test_the_transcript_reads_back_with_its_typed_report() -> None:
    transcript, _ = await run_swarm(swarm_config(), fakes(orchestrator(GOOD_PLAN)))

    again = Transcript.model_validate_json(transcript.to_json())

    assert report_of(again) == report_of(transcript)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"agents": [{**AGENTS[0], "models": ["nope"]}]}, "no model 'nope' in the config"),
        ({"agents": [{**AGENTS[0], "strategy": "swarm"}]}, "cannot themselves be a swarm"),
        ({"agents": [AGENTS[0], AGENTS[0]]}, "math repeats"),
        ({"agents": AGENTS, "fallback_agent": "poet"}, "fallback_agent 'poet' is not an agent"),
        ({"agents": AGENTS, "max_steps": 2, "max_depth": 3}, "max_depth 3 exceeds max_steps 2"),
        (
            {"agents": [{**AGENTS[0], "strategy": "vote", "strategy_options": {"x": 1}}]},
            r"agents\.0: strategy_options of 'vote': x: Extra inputs are not permitted",
        ),
    ],
)
async def test_a_bad_swarm_config_is_a_clear_error(
    options: dict[str, object], problem: str
) -> None:
    data = make_config(["m1", "m2"], "orc").model_dump(mode="json")
    data.update(strategy="swarm", strategy_options=options)

    def build() -> None:
        make_engine(parse_config(data), fakes(orchestrator()))

    with pytest.raises(ConfigError, match=problem):
        build()
