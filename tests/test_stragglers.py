"""Stragglers and resting members: the engine's fan-out, driven by the shipped fakes."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from conclave.config import ConsensusConfig
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.events import ConsensusDone, MemberFailed
from conclave.consensus.health import MemberHealth
from conclave.consensus.panel import build_panel
from conclave.consensus.stragglers import GracePolicy
from conclave.consensus.transcript import Transcript
from conclave.errors import ConsensusError, ProviderHTTPError
from conclave.providers.base import ProviderCapabilities
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.types import Message

QUESTION = (Message(role="user", content="What is the capital of France?"),)
NEVER_S = 3600.0
"""A latency no test waits for: a member this slow is only ever cut or cancelled."""


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_config(members: Sequence[str] = ("a", "b", "c"), **changes: object) -> ConsensusConfig:
    data: dict[str, object] = {
        "models": [{"id": name} for name in members],
        "aggregator": [{"model": {"id": "agg"}}],
        "iterations": 0,
    }
    data.update(changes)
    return ConsensusConfig.model_validate(data)


def make_engine(
    config: ConsensusConfig,
    fakes: dict[str, FakeModel | FunctionModel],
    health: MemberHealth | None = None,
) -> ConsensusEngine:
    registry = ProviderRegistry(overrides={"openrouter": FakeProvider(fakes)})
    return ConsensusEngine(
        config, build_panel(config, registry), rng=random.Random(0), health=health
    )


def answering(latency_s: float = 0.0) -> FakeModel:
    return FakeModel(default="Paris.", latency_s=latency_s)


def failing() -> FakeModel:
    return FakeModel(default=ProviderHTTPError("HTTP 500: boom", status_code=500))


def error_types(transcript: Transcript) -> list[dict[str, str | None]]:
    return [
        {r.model: r.error.type if r.error else None for r in record.responses}
        for record in transcript.rounds
    ]


async def test_a_straggler_is_recorded_late_and_the_round_goes_on_without_it() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": answering(),
        "b": answering(),
        "c": answering(latency_s=NEVER_S),
        "agg": FakeModel(default="Paris is the capital."),
    }
    engine = make_engine(make_config(quorum=2, grace_s=0.0, iterations=1), fakes)

    events = [event async for event in engine.run(QUESTION)]

    done = events[-1]
    assert isinstance(done, ConsensusDone)
    transcript = done.transcript
    assert transcript.answer == "Paris is the capital."
    assert error_types(transcript) == [{"a": None, "b": None, "c": "late"}] * 2
    late = [e for e in events if isinstance(e, MemberFailed)]
    assert [e.response.model for e in late] == ["c", "c"]
    assert all(e.response.latency_s > 0 for e in late)
    assert "went on without it" in late[0].response.error.message  # type: ignore[union-attr]
    assert len(fakes["c"].history) == 2  # asked in both rounds, waited for in neither


async def test_no_member_is_cut_before_the_quorum_has_answered() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": answering(),
        "b": answering(),
        "c": answering(latency_s=0.05),
        "agg": FakeModel(default="Paris."),
    }
    engine = make_engine(make_config(quorum=3, grace_s=0.0), fakes)

    transcript = await engine.run_to_end(QUESTION)

    assert error_types(transcript) == [{"a": None, "b": None, "c": None}]


async def test_failures_do_not_count_towards_the_quorum_that_starts_the_grace() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": failing(),
        "b": answering(latency_s=0.05),
        "agg": FakeModel(default="Paris."),
    }
    engine = make_engine(make_config(("a", "b"), quorum=1, grace_s=0.0), fakes)

    transcript = await engine.run_to_end(QUESTION)

    assert error_types(transcript) == [{"a": "http_error", "b": None}]


def test_the_derived_grace_follows_the_quorum_and_each_members_usual_time() -> None:
    policy = GracePolicy.from_config(
        make_config(grace_factor=0.5, grace_floor_s=0.25, straggler_factor=1.5)
    )

    assert policy.grace_s([0.2, 3.0]) == 1.5
    assert policy.grace_s([0.1]) == 0.25
    # Left behind after the grace, or once 1.5 times slower than usual if that is later.
    assert policy.left_behind_at_s(3.0, [3.0], usual_s=1.0) == 4.5
    assert policy.left_behind_at_s(3.0, [3.0], usual_s=8.0) == 12.0
    # Never seen answering: waited for up to its timeout.
    assert policy.left_behind_at_s(3.0, [3.0], usual_s=None) is None
    fixed = GracePolicy.from_config(make_config(grace_s=0.25))
    assert fixed.left_behind_at_s(2.0, [9.0], usual_s=None) == 2.25
    # An embedded member (this machine's own compute) is waited for, unless the grace is fixed.
    assert policy.left_behind_at_s(3.0, [3.0], usual_s=1.0, embedded=True) is None
    assert fixed.left_behind_at_s(2.0, [9.0], usual_s=1.0, embedded=True) == 2.25


async def test_a_slower_member_is_waited_for_until_it_is_slower_than_itself() -> None:
    slow = FunctionModel(lambda messages, options: "Paris, slowly.", latency_s=0.05)
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": answering(),
        "c": slow,
        "agg": FakeModel(default="Paris."),
    }
    engine = make_engine(make_config(("a", "c"), grace_factor=0, grace_floor_s=0), fakes)

    first = await engine.run_to_end(QUESTION)  # c has no usual time yet: waited for
    second = await engine.run_to_end(QUESTION)  # as slow as usual: waited for
    slow.latency_s = NEVER_S
    third = await engine.run_to_end(QUESTION)  # far slower than usual: left behind

    assert [error_types(t)[0]["c"] for t in (first, second, third)] == [None, None, "late"]
    usual = engine.health.usual_latency_s("c")
    assert usual is not None
    assert third.rounds[0].responses[1].latency_s >= 1.5 * usual


async def test_a_member_that_keeps_failing_rests_and_is_recorded_as_skipped() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": answering(),
        "b": answering(),
        "c": failing(),
        "agg": FakeModel(default="Paris."),
    }
    engine = make_engine(make_config(breaker_failures=2, breaker_cooldown_s=60), fakes)

    transcripts = [await engine.run_to_end(QUESTION) for _ in range(4)]

    assert len(fakes["c"].history) == 2
    assert [error_types(t)[0]["c"] for t in transcripts] == [
        "http_error",
        "http_error",
        "cooldown",
        "cooldown",
    ]
    skipped = transcripts[-1].rounds[0].responses[2]
    assert "2 failed calls in a row" in skipped.error.message  # type: ignore[union-attr]
    assert skipped.messages == ()  # nothing was sent
    (status,) = [s for s in engine.health.snapshot() if s.member == "c"]
    assert status.state == "open"
    assert status.times_opened == 1


async def test_a_resting_member_is_probed_after_its_cooldown_and_closes_when_it_answers() -> None:
    clock = ManualClock()
    health = MemberHealth(failures=1, cooldown_s=30, clock=clock)
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": answering(),
        "c": FakeModel([ProviderHTTPError("HTTP 503: down", status_code=503)], default="Paris."),
        "agg": FakeModel(default="Paris."),
    }
    engine = make_engine(make_config(("a", "c")), fakes, health=health)

    await engine.run_to_end(QUESTION)
    resting = await engine.run_to_end(QUESTION)
    clock.now += 31
    probed = await engine.run_to_end(QUESTION)
    after = await engine.run_to_end(QUESTION)

    assert error_types(resting)[0]["c"] == "cooldown"
    assert error_types(probed)[0]["c"] is None
    assert error_types(after)[0]["c"] is None
    assert len(fakes["c"].history) == 3
    assert {s.member: s.state for s in health.snapshot()}["c"] == "closed"


async def test_resting_members_are_called_anyway_when_the_quorum_needs_them() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": answering(),
        "c": failing(),
        "agg": FakeModel(default="Paris."),
    }
    engine = make_engine(make_config(("a", "c"), quorum=2, breaker_failures=1), fakes)

    for _ in range(3):
        with pytest.raises(ConsensusError, match="below the quorum"):
            await engine.run_to_end(QUESTION)

    assert len(fakes["c"].history) == 3


async def test_a_late_member_is_not_rested_for_it() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": answering(),
        "c": answering(latency_s=NEVER_S),
        "agg": FakeModel(default="Paris."),
    }
    engine = make_engine(make_config(("a", "c"), grace_s=0.0, breaker_failures=2), fakes)

    transcripts = [await engine.run_to_end(QUESTION) for _ in range(3)]

    assert [error_types(t)[0]["c"] for t in transcripts] == ["late", "late", "late"]
    assert len(fakes["c"].history) == 3


def test_one_probe_at_a_time_and_a_cancelled_probe_lets_the_next_one_through() -> None:
    clock = ManualClock()
    health = MemberHealth(failures=1, cooldown_s=10, clock=clock)
    health.record("m", ok=False)
    assert health.admit("m") == "skip"

    clock.now += 11
    assert health.admit("m") == "probe"
    assert health.admit("m") == "skip"
    assert health.snapshot()[0].state == "probing"
    health.abandon("m")
    assert health.admit("m") == "probe"
    health.record("m", ok=False)
    assert health.admit("m") == "skip"
    assert health.snapshot()[0].cooldown_left_s == pytest.approx(10)
    assert health.snapshot()[0].times_opened == 1


async def test_when_every_member_rests_the_run_fails_at_once_and_says_retrying_is_pointless() -> (
    None
):
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": failing(),
        "c": failing(),
        "agg": FakeModel(default="Paris."),
    }
    engine = make_engine(make_config(("a", "c"), breaker_failures=1), fakes)
    with pytest.raises(ConsensusError) as first:
        await engine.run_to_end(QUESTION)
    assert first.value.retryable
    called = [len(fakes[name].history) for name in ("a", "c")]

    with pytest.raises(ConsensusError) as resting:
        await engine.run_to_end(QUESTION)

    assert [len(fakes[name].history) for name in ("a", "c")] == called
    assert not resting.value.retryable
    assert "every member is resting" in str(resting.value)
    transcript = resting.value.transcript
    assert transcript is not None
    assert error_types(transcript) == [{"a": "cooldown", "c": "cooldown"}]


async def test_when_every_member_rests_a_probe_is_still_let_through_after_the_cooldown() -> None:
    clock = ManualClock()
    health = MemberHealth(failures=1, cooldown_s=30, clock=clock)
    down = ProviderHTTPError("HTTP 400: bad", status_code=400)
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": FakeModel([down], default="Paris."),
        "agg": FakeModel(default="Paris."),
    }
    engine = make_engine(make_config(("a",)), fakes, health=health)
    for _ in range(2):
        with pytest.raises(ConsensusError):
            await engine.run_to_end(QUESTION)
    clock.now += 31

    transcript = await engine.run_to_end(QUESTION)

    assert transcript.answer == "Paris."
    assert len(fakes["a"].history) == 2


class EmbeddedFakes(FakeProvider):
    """Fakes whose provider says it runs its models in this process."""

    capabilities = ProviderCapabilities(embedded=True, token_probabilities=True)


@pytest.mark.parametrize(("embedded", "third"), [(False, "late"), (True, None)])
async def test_an_embedded_member_is_not_left_behind_for_being_slower_than_usual(
    embedded: bool, third: str | None
) -> None:
    slow = FunctionModel(lambda messages, options: "Paris, slowly.", latency_s=0.02)
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": answering(),
        "c": slow,
        "agg": FakeModel(default="Paris."),
    }
    provider = EmbeddedFakes(fakes) if embedded else FakeProvider(fakes)
    config = make_config(("a", "c"), grace_factor=0, grace_floor_s=0)
    registry = ProviderRegistry(overrides={"openrouter": provider})
    engine = ConsensusEngine(config, build_panel(config, registry), rng=random.Random(0))

    await engine.run_to_end(QUESTION)
    await engine.run_to_end(QUESTION)
    slow.latency_s = 0.3
    transcript = await engine.run_to_end(QUESTION)

    assert error_types(transcript)[0]["c"] == third
