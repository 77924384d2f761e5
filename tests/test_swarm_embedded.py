"""One whole swarm on the real embedded models, as `conclave ask --strategy swarm` runs it with
no config: the 1.5B plans under the grammar, the steps run as the embedded agents' own
consensus, and the 1.5B writes the answer. What the models answer is not tested; that the run
holds together is."""

from __future__ import annotations

import pytest

from conclave.consensus.events import ConsensusDone, StepProgress
from conclave.consensus.strategies.swarm import swarm_report
from conclave.presets import embedded_config
from conclave.providers.local import LocalProvider
from conclave.providers.registry import ProviderRegistry
from conclave.session import Consensus

TASK = (
    "This task has 2 parts. Answer every part.\n\n1. What is 17 * 3?\n\n"
    "2. What is the capital of Peru?\n\nReply in the form:\n1. <number>\n2. <a few words>"
)


@pytest.mark.embedded
async def test_a_swarm_on_the_embedded_models_plans_runs_its_steps_and_answers(
    local_provider: LocalProvider,
) -> None:
    config = embedded_config().with_changes(strategy="swarm")
    consensus = Consensus(config, registry=ProviderRegistry(overrides={"local": local_provider}))

    events = [event async for event in consensus.events(TASK)]

    done = events[-1]
    assert isinstance(done, ConsensusDone)
    transcript = done.transcript
    report = swarm_report(transcript)
    assert report is not None
    assert report.plan.source == "first"  # the grammar admits valid plans only
    planned = report.plan.plan.steps
    assert {step.agent for step in planned} <= {"math", "knowledge"}
    assert [result.step for result in report.steps] == list(planned)
    assert all(result.status in ("done", "failed") for result in report.steps)
    assert transcript.answer.strip()
    [record] = transcript.rounds
    assert record.responses == ()  # the round asks no panel member: the steps do
    assert record.aggregate is not None  # the orchestrator wrote the answer
    assert record.aggregate.ok
    [swarm] = [step for step in record.steps if step.step == "swarm"]
    planner, *step_calls = [call.model for call in swarm.calls]
    assert planner.endswith("(planner)")
    for step in planned:  # every step's calls are kept, labelled with the step and its agent
        assert any(label.startswith(f"step {step.id} {step.agent}: ") for label in step_calls)
    assert all(label.startswith("step ") for label in step_calls)
    progress = [e for e in events if isinstance(e, StepProgress) and e.step == "swarm"]
    assert (progress[0].name, progress[0].status) == ("plan", "finished")
    of_steps = progress[1:]  # each step's start, its members' calls and its end
    names = sorted(f"step {step.id}" for step in planned)
    assert sorted(e.name for e in of_steps if e.status == "started") == names
    assert sorted(e.name for e in of_steps if e.status in ("finished", "failed")) == names
    assert sorted({e.name for e in of_steps if e.status == "note" and e.call}) == names
