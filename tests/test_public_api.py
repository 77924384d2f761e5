"""What a user imports: `conclave` exports the public API and no engine internals, and the fakes
of `conclave.testing` let a user run `Consensus` in their own tests."""

from __future__ import annotations

import inspect
import re
import textwrap
from typing import get_args

import pytest

import conclave
import conclave.errors
import conclave.testing
from conclave import (
    AggregatorSpec,
    CallRecord,
    Consensus,
    ConsensusConfig,
    ConsensusDone,
    ConsensusError,
    ConsensusEvent,
    MemberAnswered,
    MemberFailed,
    ModelSpec,
    ProviderResponseError,
    RunStarted,
)
from conclave.testing import FakeModel, FunctionModel, fake_registry

QUESTION = "What is the capital of France?"


def panel(*members: ModelSpec, judge: str = "judge") -> ConsensusConfig:
    return ConsensusConfig(
        models=members,
        aggregator=[AggregatorSpec(model=ModelSpec(id=judge))],
        iterations=0,
    )


async def test_a_user_runs_consensus_over_fakes_named_as_any_model_is() -> None:
    judge = FakeModel(default="Paris")
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": FakeModel(["Paris"]),
        "b": FunctionModel(lambda messages, options: "Paris, France."),
        "c": FakeModel(["Lyon"]),
        "d": FakeModel(["Paris!"]),
        "judge": judge,
    }
    config = panel(
        ModelSpec(id="a"),
        ModelSpec(id="openrouter:b"),
        ModelSpec(id="local:c"),
        ModelSpec(id="d", base_url="http://127.0.0.1:9/v1"),
    )
    async with Consensus(config, registry=fake_registry(fakes)) as consensus:
        transcript = await consensus.ask(QUESTION)
    assert transcript.answer == "Paris"
    answers = sorted(call.text for call in transcript.rounds[0].responses)
    assert answers == ["Lyon", "Paris", "Paris!", "Paris, France."]
    assert [call.messages[-1].content for call in fakes["a"].history] == [QUESTION]
    assert len(judge.history) == 1
    assert any("Paris, France." in m.content for m in judge.history[0].messages)  # a candidate


async def test_a_user_sees_the_run_as_the_exported_events_and_a_failure_as_a_record() -> None:
    fakes = {
        "a": FakeModel(["Paris"]),
        "b": FakeModel([ProviderResponseError("b is down", model="b")]),
        "judge": FakeModel(default="Paris"),
    }
    consensus = Consensus(
        panel(ModelSpec(id="a"), ModelSpec(id="b")), registry=fake_registry(fakes)
    )
    events: list[ConsensusEvent] = [event async for event in consensus.events(QUESTION)]
    await consensus.aclose()
    assert isinstance(events[0], RunStarted)
    assert isinstance(events[-1], ConsensusDone)
    answered = [e.response for e in events if isinstance(e, MemberAnswered)]
    failed = [e.response for e in events if isinstance(e, MemberFailed)]
    assert [call.text for call in answered] == ["Paris"]
    assert len(failed) == 1
    assert isinstance(failed[0], CallRecord)
    assert failed[0].error is not None
    assert "b is down" in failed[0].error.message
    assert events[-1].transcript.answer == "Paris"


async def test_a_user_sees_a_consensus_that_failed_as_an_exported_error() -> None:
    fakes = {"a": FakeModel([ProviderResponseError("down")]), "judge": FakeModel(default="x")}
    async with Consensus(panel(ModelSpec(id="a")), registry=fake_registry(fakes)) as consensus:
        with pytest.raises(ConsensusError) as raised:
            await consensus.ask(QUESTION)
    assert raised.value.transcript is not None


async def test_the_example_in_conclave_testing_runs_as_written() -> None:
    doc = conclave.testing.__doc__ or ""
    found = re.search(r"```python\n(.*?)```", doc, re.DOTALL)
    assert found is not None
    namespace: dict[str, object] = {}
    exec(f"async def example():\n{textwrap.indent(found.group(1), '    ')}", namespace)
    await namespace["example"]()  # type: ignore[operator]


def test_conclave_exports_the_public_api_and_no_engine_internals() -> None:
    exported = set(conclave.__all__)
    assert all(hasattr(conclave, name) for name in exported)
    for internal in ("ConsensusEngine", "Member", "Panel"):
        assert internal not in exported
        assert not hasattr(conclave, internal)
    errors = {
        name
        for name, value in inspect.getmembers(conclave.errors, inspect.isclass)
        if issubclass(value, conclave.errors.ConclaveError)
    }
    assert errors <= exported, f"errors not exported: {sorted(errors - exported)}"
    union = get_args(ConsensusEvent)[0]  # Annotated[A | B | ..., discriminator]
    events = {event.__name__ for event in get_args(union)}
    assert events, "ConsensusEvent is no longer an annotated union of event classes"
    assert events <= exported, f"events not exported: {sorted(events - exported)}"
    for name in ("Provider", "ProviderRegistry", "Transcript", "RoundRecord", "Settings"):
        assert name in exported
