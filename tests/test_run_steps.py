"""The steps around a strategy's rounds (a conversation step before the first round, checks
after the final consensus), a round that asks no member, and the progress events steps
yield: forwarded by the engine unchanged and kept by the transcript."""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from conclave.config import ConsensusConfig
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.events import (
    AggregateFinished,
    AnswerChecked,
    ConsensusDone,
    ConversationPrepared,
    RoundFinished,
    RoundStarted,
    RunStarted,
    StepProgress,
)
from conclave.consensus.panel import Member, build_panel
from conclave.consensus.steps import CheckEvent, CombinerEvent, PrepareEvent
from conclave.consensus.strategies import Extension, StrategyContext, register_extension
from conclave.consensus.transcript import CallRecord, RoundRecord, StepNote, StepRecord
from conclave.errors import ProviderHTTPError
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.session import Consensus
from conclave.types import Message, Usage
from test_engine import QUESTION, echo, make_config

Fakes = dict[str, FakeModel | FunctionModel]
PASSAGES = Message(role="system", content="[1] Paris is the capital of France.")


class Passages:
    """Puts a numbered passage before the conversation, as grounding does."""

    name = "passages"

    async def prepare(
        self, conversation: tuple[Message, ...]
    ) -> AsyncGenerator[PrepareEvent, None]:
        yield StepProgress(step=self.name, status="started", message="retrieving")
        call = CallRecord(
            model="retriever", role="step", text="1 passage", usage=Usage(completion_tokens=5)
        )
        yield StepProgress(step=self.name, status="finished", call=call)
        record = StepRecord(step=self.name, calls=(call,), report=StepNote(text="1 passage"))
        yield ConversationPrepared(
            step=self.name, conversation=(PASSAGES, *conversation), record=record
        )


class Marker:
    """Revises the consensus by appending a mark, counting the answers it read."""

    def __init__(self, name: str = "marker") -> None:
        self.name = name
        self.read: list[str] = []

    async def check(
        self, round: RoundRecord, conversation: Sequence[Message], answer: str
    ) -> AsyncGenerator[CheckEvent, None]:
        self.read.append(answer)
        yield StepProgress(step=self.name, round=round.index, message="checking")
        record = StepRecord(step=self.name, report=StepNote(text="marked"))
        yield AnswerChecked(
            round=round.index,
            step=self.name,
            answer=f"{answer} [{self.name}]",
            revised=True,
            record=record,
        )


class Nobody:
    def select(
        self,
        round_index: int,
        members: tuple[Member, ...],
        history: Sequence[RoundRecord],
        conversation: Sequence[Message],
    ) -> tuple[Member, ...]:
        return ()


class Planner:
    """A combiner that does the whole round's work itself (as a swarm does)."""

    async def combine(
        self,
        round_index: int,
        conversation: Sequence[Message],
        candidates: Sequence[CallRecord],
        *,
        stream: bool,
    ) -> AsyncGenerator[CombinerEvent, None]:
        assert candidates == ()
        step = CallRecord(
            model="agent", role="step", text="Paris", usage=Usage(completion_tokens=3)
        )
        yield StepProgress(step="plan", round=round_index, name="s1", status="started")
        yield StepProgress(step="plan", round=round_index, name="s1", status="finished", call=step)
        answer = CallRecord(model="writer", role="aggregator", text="It is Paris.")
        yield AggregateFinished(
            round=round_index,
            response=answer,
            other_calls=(step,),
            steps=(StepRecord(step="plan", report=StepNote(text="1 step")),),
        )


def engine_for(fakes: Fakes, config: ConsensusConfig, **steps: Any) -> ConsensusEngine:
    registry = ProviderRegistry(overrides={"openrouter": FakeProvider(fakes)})
    panel = build_panel(config, registry)
    return ConsensusEngine(config, panel, rng=random.Random(0), **steps)


def panel_fakes() -> Fakes:
    fakes: Fakes = {name: echo(name) for name in "abc"}
    fakes["agg"] = FakeModel(["first", "second"])
    return fakes


async def test_a_step_before_the_rounds_rewrites_what_members_are_asked_and_is_kept() -> None:
    fakes = panel_fakes()
    engine = engine_for(fakes, make_config(iterations=0), before=[Passages()])
    events = [event async for event in engine.run(QUESTION)]

    kinds = [event.kind for event in events[:5]]
    assert kinds == [
        "run_started",
        "step_progress",
        "step_progress",
        "conversation_prepared",
        "round_started",
    ]
    assert fakes["a"].history[0].messages == (PASSAGES, *QUESTION)
    done = events[-1]
    assert isinstance(done, ConsensusDone)
    transcript = done.transcript
    assert transcript.conversation == QUESTION
    assert transcript.prepared_conversation == (PASSAGES, *QUESTION)
    assert transcript.prepared[0].report == StepNote(text="1 passage")
    assert "retriever" in [call.model for _, call in transcript.calls()]
    assert transcript.usage.total_tokens >= 5
    member_call = transcript.rounds[0].responses[0]
    assert transcript.sent(member_call) == (PASSAGES, *QUESTION)


async def test_checks_revise_only_the_final_consensus_each_reading_the_last_ones_answer() -> None:
    fakes = panel_fakes()
    first, second = Marker("one"), Marker("two")
    engine = engine_for(fakes, make_config(iterations=1), after=[first, second])
    events = [event async for event in engine.run(QUESTION)]

    assert first.read == ["second"]
    assert second.read == ["second [one]"]
    finished = [event for event in events if isinstance(event, RoundFinished)]
    assert finished[0].record.revised_answer is None
    assert finished[1].record.revised_answer == "second [one] [two]"
    checked = [event.kind for event in events if event.kind in ("answer_checked", "round_finished")]
    assert checked == ["round_finished", "answer_checked", "answer_checked", "round_finished"]
    done = events[-1]
    assert isinstance(done, ConsensusDone)
    assert done.transcript.answer == "second [one] [two]"
    assert [step.step for step in done.transcript.rounds[-1].steps] == ["one", "two"]
    assert fakes["a"].history[1].messages[-2].content == "Consensus: first"


async def test_a_kept_consensus_is_checked_too() -> None:
    down = ProviderHTTPError("down", status_code=400)
    fakes: Fakes = {
        "a": FakeModel(["A", down]),
        "agg": FakeModel(default="kept"),
    }
    engine = engine_for(fakes, make_config(["a"], iterations=1), after=[Marker()])
    transcript = await engine.run_to_end(QUESTION)
    assert transcript.stop_reason == "quorum_lost"
    assert transcript.answer == "kept [marker]"


async def test_a_round_that_asks_nobody_is_the_combiners_and_its_progress_is_forwarded() -> None:
    fakes = panel_fakes()
    config = make_config(iterations=0, quorum=3)
    engine = engine_for(fakes, config, selector=Nobody(), combiner=Planner())
    events = [event async for event in engine.run(QUESTION)]

    assert all(not fake.history for fake in fakes.values())
    started = next(event for event in events if isinstance(event, RoundStarted))
    assert started.members == ()
    progress = [event for event in events if isinstance(event, StepProgress)]
    assert [(event.name, event.status) for event in progress] == [
        ("s1", "started"),
        ("s1", "finished"),
    ]
    done = events[-1]
    assert isinstance(done, ConsensusDone)
    transcript = done.transcript
    assert transcript.answer == "It is Paris."
    assert transcript.rounds[0].responses == ()
    assert transcript.rounds[0].steps[0].report == StepNote(text="1 step")
    assert [call.model for _, call in transcript.calls()] == ["agent", "writer"]
    assert isinstance(events[0], RunStarted)


def noted(context: StrategyContext) -> Extension:
    """Checks every consensus of a config named `noted` (an extension turned on by config)."""
    return Extension(after=(Marker("noted"),)) if context.config.name == "noted" else Extension()


register_extension("test-noted", noted)


async def test_an_extension_adds_its_steps_to_every_strategy_when_the_config_turns_it_on() -> None:
    for strategy in ("flare", "vote"):
        fakes = panel_fakes()
        registry = ProviderRegistry(overrides={"openrouter": FakeProvider(fakes)})
        on = make_config(iterations=0, strategy=strategy, name="noted")
        off = make_config(iterations=0, strategy=strategy)
        async with Consensus(on, registry=registry) as consensus:
            assert (await consensus.ask("q")).answer.endswith(" [noted]")
        async with Consensus(
            off, registry=ProviderRegistry(overrides={"openrouter": FakeProvider(panel_fakes())})
        ) as consensus:
            assert not (await consensus.ask("q")).answer.endswith(" [noted]")
