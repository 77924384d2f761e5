"""The one call path of a run (deadline, breaker, record, one error policy) as the aggregator,
its fallbacks and the reviewers of `rank` meet it, driven by the shipped fakes."""

from __future__ import annotations

from collections.abc import Sequence

from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.events import CombinerFellBack, ConsensusDone, ConsensusEvent
from conclave.consensus.health import MemberHealth
from conclave.consensus.panel import build_panel
from conclave.consensus.transcript import Transcript
from conclave.errors import ProviderHTTPError
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.types import Message, SamplingOptions
from test_engine import QUESTION, echo, make_config, make_engine
from test_stragglers import ManualClock

Fakes = dict[str, FakeModel | FunctionModel]


def broken() -> FakeModel:
    return FakeModel(default=ProviderHTTPError("HTTP 500: boom", status_code=500))


async def run(fakes: Fakes, strategy: str) -> tuple[Transcript, list[ConsensusEvent]]:
    engine = make_engine(make_config(iterations=0, strategy=strategy), fakes)
    events = [event async for event in engine.run(QUESTION)]
    done = events[-1]
    assert isinstance(done, ConsensusDone)
    return done.transcript, events


def panel(**others: FakeModel | FunctionModel) -> Fakes:
    return {"a": echo("a"), "b": echo("a"), "c": echo("c"), **others}


async def test_a_dead_aggregator_rests_and_is_skipped_straight_to_the_vote() -> None:
    fakes = panel(agg=broken())
    engine = make_engine(make_config(iterations=0, breaker_failures=2), fakes)
    runs = [[event async for event in engine.run(QUESTION)] for _ in range(4)]

    assert len(fakes["agg"].history) == 2
    last = runs[-1]
    done = last[-1]
    assert isinstance(done, ConsensusDone)
    record = done.transcript.rounds[0]
    assert record.decided_by == "fallback_vote"
    assert done.transcript.answer == "a says Paris"
    (skipped,) = record.other_calls
    assert skipped.model == "agg (aggregator)"
    assert skipped.error is not None
    assert skipped.error.type == "cooldown"
    assert "2 failed calls in a row" in skipped.error.message
    (fell_back,) = [event for event in last if isinstance(event, CombinerFellBack)]
    assert fell_back.failed == skipped
    assert fell_back.fallback == "fallback_vote"
    assert {s.member: s.state for s in engine.health.snapshot()}["agg"] == "open"


async def test_a_dead_fallback_aggregator_rests_too_and_every_fallback_is_announced() -> None:
    fakes = panel(agg=broken(), backup=broken())
    config = make_config(
        iterations=0, breaker_failures=1, fallback_aggregator={"id": "backup", "max_tokens": 50}
    )
    engine = make_engine(config, fakes)
    await engine.run_to_end(QUESTION)
    events = [event async for event in engine.run(QUESTION)]

    assert (len(fakes["agg"].history), len(fakes["backup"].history)) == (1, 1)
    fell_back = [event for event in events if isinstance(event, CombinerFellBack)]
    assert [(event.failed.model, event.fallback) for event in fell_back] == [
        ("agg (aggregator)", "fallback_aggregator"),
        ("backup (fallback aggregator)", "fallback_vote"),
    ]
    assert all(event.failed.error and event.failed.error.type == "cooldown" for event in fell_back)
    done = events[-1]
    assert isinstance(done, ConsensusDone)
    assert done.transcript.rounds[0].decided_by == "fallback_vote"


async def test_a_resting_aggregator_is_probed_after_its_cooldown_and_decides_again() -> None:
    clock = ManualClock()
    fakes = panel(agg=FakeModel([ProviderHTTPError("HTTP 503", status_code=503)], default="C"))
    config = make_config(iterations=0)
    registry = ProviderRegistry(overrides={"openrouter": FakeProvider(fakes)})
    health = MemberHealth(failures=1, cooldown_s=30, clock=clock)
    engine = ConsensusEngine(config, build_panel(config, registry), health=health)

    decided = [(await engine.run_to_end(QUESTION)).rounds[0].decided_by for _ in range(2)]
    clock.now += 31
    decided.append((await engine.run_to_end(QUESTION)).rounds[0].decided_by)

    assert decided == ["fallback_vote", "fallback_vote", "aggregator"]
    assert len(fakes["agg"].history) == 2


def reviews_oddly(name: str) -> FunctionModel:
    """Answers as a member, but its review raises what no provider should."""

    def answer(messages: Sequence[Message], options: SamplingOptions) -> str:
        if "RANKING" in messages[-1].content:
            raise RuntimeError("a bug in a provider")
        return f"{name} says Paris"

    return FunctionModel(answer)


async def test_one_reviewer_raising_anything_fails_only_its_review() -> None:
    fakes = panel(c=reviews_oddly("c"), agg=FakeModel(default="Paris."))
    transcript, _ = await run(fakes, "rank")

    record = transcript.rounds[0]
    assert transcript.answer == "Paris."
    assert record.decided_by == "rank"
    failed = [call for call in record.other_calls if call.error is not None]
    assert [call.model for call in failed] == ["c (reviewer)"]
    assert failed[0].error is not None
    assert "RuntimeError: a bug in a provider" in failed[0].error.message
    assert [call.role for call in record.other_calls] == ["reviewer"] * 3
