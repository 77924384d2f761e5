"""The consensus engine, driven by the shipped fakes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence

import pytest

from conclave.config import ConsensusConfig
from conclave.consensus.answers import text_similarity
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.events import (
    AggregateDelta,
    AggregateFinished,
    ConsensusDone,
    MemberAnswered,
    MemberFailed,
    RoundFinished,
    RoundStarted,
    RunStarted,
)
from conclave.consensus.panel import build_panel
from conclave.errors import (
    ConfigError,
    ConsensusError,
    InsufficientCreditsError,
    ProviderHTTPError,
    RateLimitedError,
)
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.types import Completion, Message, SamplingOptions, StreamItem, Usage

QUESTION = (Message(role="user", content="What is the capital of France?"),)


def make_config(
    members: Sequence[str] = ("a", "b", "c"), aggregator: str = "agg", **changes: object
) -> ConsensusConfig:
    data: dict[str, object] = {
        "models": [{"id": name, "max_tokens": 100, "temperature": 0.1} for name in members],
        "aggregator": [
            {
                "model": {"id": aggregator, "max_tokens": 200, "temperature": 0.0},
                "aggregator_context": [{"role": "system", "content": "CONTEXT"}],
                "aggregator_prompt": [{"role": "user", "content": "PROMPT"}],
            }
        ],
        "aggregated_prompt_type": "system",
        "improvement_prompt": "IMPROVE",
        "iterations": 1,
    }
    data.update(changes)
    return ConsensusConfig.model_validate(data)


def make_engine(
    config: ConsensusConfig, fakes: dict[str, FakeModel | FunctionModel], seed: int = 0
) -> ConsensusEngine:
    registry = ProviderRegistry(overrides={"openrouter": FakeProvider(fakes)})
    return ConsensusEngine(config, build_panel(config, registry), rng=random.Random(seed))


def echo(name: str) -> FunctionModel:
    return FunctionModel(lambda messages, options: f"{name} says Paris")


async def collect(
    engine: ConsensusEngine, conversation: Sequence[Message] = QUESTION
) -> list[object]:
    return [event async for event in engine.run(conversation)]


async def test_round_zero_sends_the_conversation_and_improvement_rounds_add_the_consensus() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {n: echo(n) for n in "abc"}
    fakes["agg"] = FakeModel(["first consensus", "second consensus"])
    transcript = await make_engine(make_config(), fakes).run_to_end(QUESTION)

    assert [len(r.responses) for r in transcript.rounds] == [3, 3]
    for name in "abc":
        first, second = fakes[name].history
        assert first.messages == QUESTION
        assert second.messages == (
            *QUESTION,
            Message(role="system", content="Consensus: first consensus"),
            Message(role="user", content="IMPROVE"),
        )
        assert first.options == SamplingOptions(max_tokens=100, temperature=0.1)
    assert transcript.answer == "second consensus"
    assert transcript.stop_reason == "iterations"


@pytest.mark.parametrize("role", ["user", "assistant", "system"])
async def test_consensus_is_handed_back_in_the_configured_role(role: str) -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {"a": echo("a"), "agg": FakeModel(default="C")}
    config = make_config(members=["a"], aggregated_prompt_type=role)
    await make_engine(config, fakes).run_to_end(QUESTION)
    assert fakes["a"].history[1].messages[-2] == Message(role=role, content="Consensus: C")


@pytest.mark.parametrize("iterations", [0, 1, 3])
async def test_iterations_count_improvement_rounds(iterations: int) -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {"a": echo("a"), "agg": FakeModel(default="C")}
    config = make_config(members=["a"], iterations=iterations)
    transcript = await make_engine(config, fakes).run_to_end(QUESTION)
    assert len(transcript.rounds) == iterations + 1
    assert len(fakes["agg"].history) == iterations + 1


async def test_aggregator_sees_context_conversation_anonymised_candidates_and_prompt() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "model-alpha": FunctionModel(lambda m, o: "Paris is the capital."),
        "model-beta": FunctionModel(lambda m, o: "It is Paris."),
        "model-gamma": FunctionModel(lambda m, o: "Lyon."),
        "agg": FakeModel(default="Paris"),
    }
    config = make_config(members=["model-alpha", "model-beta", "model-gamma"], iterations=0)
    await make_engine(config, fakes).run_to_end(QUESTION)

    context, question, candidates, prompt = fakes["agg"].history[0].messages
    assert context == Message(role="system", content="CONTEXT")
    assert question == QUESTION[0]
    assert prompt == Message(role="user", content="PROMPT")
    assert candidates.role == "system"
    for text in ("Paris is the capital.", "It is Paris.", "Lyon."):
        assert text in candidates.content
    for number in (1, 2, 3):
        assert f"<response {number}>" in candidates.content
        assert f"</response {number}>" in candidates.content
    assert "model-" not in candidates.content


async def test_candidates_are_shuffled() -> None:
    orders = set()
    for seed in range(12):
        fakes: dict[str, FakeModel | FunctionModel] = {n: echo(n) for n in "abc"}
        fakes["agg"] = FakeModel(default="C")
        await make_engine(make_config(iterations=0), fakes, seed=seed).run_to_end(QUESTION)
        content = fakes["agg"].history[0].messages[-2].content
        orders.add(tuple(sorted("abc", key=lambda name: content.index(f"{name} says"))))
    assert len(orders) > 1


async def test_members_of_a_round_run_concurrently() -> None:
    in_flight = 0
    peak = 0

    class CountingProvider(FakeProvider):
        async def complete(
            self, model: str, messages: Sequence[Message], options: SamplingOptions
        ) -> Completion:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(0.05)
                return await super().complete(model, messages, options)
            finally:
                in_flight -= 1

    fakes: dict[str, FakeModel | FunctionModel] = {n: echo(n) for n in "abcde"}
    fakes["agg"] = FakeModel(default="C")
    config = make_config(members=list("abcde"), iterations=0)
    registry = ProviderRegistry(overrides={"openrouter": CountingProvider(fakes)})
    await ConsensusEngine(config, build_panel(config, registry)).run_to_end(QUESTION)
    assert peak == 5


async def test_events_follow_finishing_order_but_records_keep_panel_order() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "slow": FakeModel(default="slow answer", latency_s=0.06),
        "fast": FakeModel(default="fast answer", latency_s=0.0),
        "mid": FakeModel(default="mid answer", latency_s=0.03),
        "agg": FakeModel(default="C"),
    }
    config = make_config(members=["slow", "fast", "mid"], iterations=0)
    events = await collect(make_engine(config, fakes))

    answered = [e.response.model for e in events if isinstance(e, MemberAnswered)]
    assert answered == ["fast", "mid", "slow"]
    done = events[-1]
    assert isinstance(done, ConsensusDone)
    assert [r.model for r in done.transcript.rounds[0].responses] == ["slow", "fast", "mid"]


async def test_event_sequence_of_a_run() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": echo("a"),
        "agg": FakeModel(default="one two"),
    }
    events = await collect(make_engine(make_config(members=["a"], iterations=1), fakes))
    kinds = [type(e) for e in events]
    assert kinds == [
        RunStarted,
        RoundStarted, MemberAnswered, AggregateDelta, AggregateDelta, AggregateFinished,
        RoundFinished,
        RoundStarted, MemberAnswered, AggregateDelta, AggregateDelta, AggregateFinished,
        RoundFinished,
        ConsensusDone,
    ]  # fmt: skip
    deltas = "".join(e.text for e in events if isinstance(e, AggregateDelta))
    assert deltas == "one twoone two"
    finals = [e.final for e in events if isinstance(e, RoundFinished)]
    assert finals == [False, True]


async def test_a_failing_member_is_recorded_and_the_round_goes_on() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": echo("a"),
        "b": FakeModel([RateLimitedError("b: rate limited", retry_after_s=3), "b recovers"]),
        "c": FakeModel(default=ProviderHTTPError("c: server error", status_code=503)),
        "agg": FakeModel(default="C"),
    }
    events = await collect(make_engine(make_config(), fakes))
    failed = [e for e in events if isinstance(e, MemberFailed)]
    assert [(e.round, e.response.model) for e in failed] == [(0, "b"), (0, "c"), (1, "c")]

    done = events[-1]
    assert isinstance(done, ConsensusDone)
    first = done.transcript.rounds[0]
    b_record, c_record = first.responses[1], first.responses[2]
    assert b_record.error is not None
    assert b_record.error.type == "rate_limited"
    assert c_record.error is not None
    assert (c_record.error.type, c_record.error.status_code) == ("http_error", 503)
    assert c_record.finish_reason == "error"
    # only the answers that arrived are shown to the aggregator
    candidates = fakes["agg"].history[0].messages[-2].content
    assert "<response 2>" not in candidates
    assert "a says Paris" in candidates


async def test_below_quorum_raises_with_every_failure_and_the_partial_transcript() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": echo("a"),
        "b": FakeModel(default=InsufficientCreditsError("b: out of credits")),
        "c": FakeModel(default=ProviderHTTPError("c: bad gateway", status_code=502)),
        "agg": FakeModel(default="C"),
    }
    with pytest.raises(ConsensusError) as caught:
        await make_engine(make_config(quorum=2), fakes).run_to_end(QUESTION)
    message = str(caught.value)
    assert "1 of 3 members answered, below the quorum of 2" in message
    assert "b: insufficient_credits: b: out of credits" in message
    assert "c: http_error: c: bad gateway" in message
    transcript = caught.value.transcript
    assert transcript is not None
    assert transcript.stop_reason == "quorum_lost"
    assert transcript.rounds[0].responses[0].text == "a says Paris"
    assert fakes["agg"].history == []


async def test_a_member_over_its_timeout_is_recorded_as_timed_out() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": echo("a"),
        "slow": FakeModel(default="too late", latency_s=5),
        "agg": FakeModel(default="C"),
    }
    config = make_config(members=["a", "slow"], iterations=0, timeout_s=0.05)
    transcript = await make_engine(config, fakes).run_to_end(QUESTION)
    error = transcript.rounds[0].responses[1].error
    assert error is not None
    assert error.type == "timeout"
    assert "no answer within 0.05 s" in error.message


async def test_an_empty_answer_counts_as_a_failure() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": echo("a"),
        "b": FakeModel(default="   "),
        "agg": FakeModel(default="C"),
    }
    config = make_config(members=["a", "b"], iterations=0)
    transcript = await make_engine(config, fakes).run_to_end(QUESTION)
    error = transcript.rounds[0].responses[1].error
    assert error is not None
    assert error.type == "empty_answer"


async def test_truncation_is_flagged() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": FakeModel(default="one two three four five six"),
        "agg": FakeModel(default="C"),
    }
    config = ConsensusConfig.model_validate(
        {
            "models": [{"id": "a", "max_tokens": 3}],
            "aggregator": [{"model": {"id": "agg"}}],
            "iterations": 0,
        }
    )
    transcript = await make_engine(config, fakes).run_to_end(QUESTION)
    response = transcript.rounds[0].responses[0]
    assert response.truncated
    assert response.finish_reason == "length"
    assert response.text == "one two three"


async def test_aggregator_failure_falls_back_to_the_vote_of_the_answers() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": echo("a"),
        "agg": FakeModel(default=ProviderHTTPError("agg: overloaded", status_code=529)),
    }
    transcript = await make_engine(make_config(members=["a"], iterations=0), fakes).run_to_end(
        QUESTION
    )
    assert transcript.answer == "a says Paris"
    record = transcript.rounds[0]
    assert record.decided_by == "fallback_vote"
    assert [call.model for call in record.other_calls] == ["agg (aggregator)"]
    assert record.other_calls[0].error is not None


async def test_budget_cap_stops_before_the_next_round() -> None:
    def costly(messages: Sequence[Message], options: SamplingOptions) -> Completion:
        return Completion(model="x", text="Paris", usage=Usage(completion_tokens=5, cost_usd=0.02))

    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": FunctionModel(costly),
        "b": FunctionModel(costly),
        "agg": FunctionModel(costly),
    }
    config = make_config(members=["a", "b"], iterations=5, budget_usd=0.05)
    transcript = await make_engine(config, fakes).run_to_end(QUESTION)
    assert len(transcript.rounds) == 1
    assert transcript.stop_reason == "budget"
    assert transcript.usage.cost_usd == pytest.approx(0.06)
    assert transcript.usage.completion_tokens == 15


async def test_initial_conversation_is_used_when_no_prompt_is_given() -> None:
    initial = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a prime."},
    ]
    fakes: dict[str, FakeModel | FunctionModel] = {"a": echo("a"), "agg": FakeModel(default="2")}
    config = make_config(members=["a"], iterations=0, initial_conversation=initial)
    transcript = await make_engine(config, fakes).run_to_end(())
    assert [m.content for m in fakes["a"].history[0].messages] == [
        "You are terse.",
        "Name a prime.",
    ]
    assert transcript.conversation == fakes["a"].history[0].messages


async def test_a_conversation_without_a_user_message_is_refused() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {"a": echo("a"), "agg": FakeModel(default="C")}
    with pytest.raises(ConfigError, match="no user message"):
        await make_engine(make_config(members=["a"]), fakes).run_to_end(
            [Message(role="system", content="only a system message")]
        )


async def test_closing_the_event_stream_early_cancels_members_in_flight() -> None:
    cancelled: list[str] = []

    class SlowProvider(FakeProvider):
        async def complete(
            self, model: str, messages: Sequence[Message], options: SamplingOptions
        ) -> Completion:
            try:
                await asyncio.sleep(0 if model == "fast" else 10)
            except asyncio.CancelledError:
                cancelled.append(model)
                raise
            return await super().complete(model, messages, options)

    fakes: dict[str, FakeModel | FunctionModel] = {
        "fast": echo("fast"),
        "stuck": echo("stuck"),
        "agg": FakeModel(default="C"),
    }
    config = make_config(members=["fast", "stuck"])
    registry = ProviderRegistry(overrides={"openrouter": SlowProvider(fakes)})
    events = ConsensusEngine(config, build_panel(config, registry)).run(QUESTION)
    async for event in events:
        if isinstance(event, MemberAnswered):
            break
    await events.aclose()
    assert cancelled == ["stuck"]


async def test_usage_totals_add_every_call() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": FakeModel(default="one two"),
        "b": FakeModel(default="three"),
        "agg": FakeModel(default="four five six"),
    }
    transcript = await make_engine(make_config(members=["a", "b"]), fakes).run_to_end(QUESTION)
    # per round: 2 + 1 member tokens + 3 aggregate tokens; two rounds
    assert transcript.usage.completion_tokens == 12
    assert transcript.usage.prompt_tokens == 6
    assert transcript.usage.cost_usd is None


async def test_duplicate_models_get_distinct_labels() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {"a": echo("a"), "agg": FakeModel(default="C")}
    config = make_config(members=["a", "a"], iterations=0)
    transcript = await make_engine(config, fakes).run_to_end(QUESTION)
    assert [r.model for r in transcript.rounds[0].responses] == ["a #1", "a #2"]
    assert all(r.ok for r in transcript.rounds[0].responses)


async def test_convergence_stops_once_the_consensus_stops_changing() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": echo("a"),
        "agg": FakeModel(
            [
                "Paris is the capital.",
                "The capital of France is Paris.",
                "The capital of France is Paris!",
                "never reached",
            ]
        ),
    }
    config = make_config(members=["a"], iterations=5, convergence_threshold=0.95)
    transcript = await make_engine(config, fakes).run_to_end(QUESTION)
    assert len(transcript.rounds) == 3
    assert transcript.stop_reason == "converged"
    assert transcript.answer == "The capital of France is Paris!"


async def test_without_a_threshold_every_iteration_runs() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {"a": echo("a"), "agg": FakeModel(default="same")}
    transcript = await make_engine(make_config(members=["a"], iterations=3), fakes).run_to_end(
        QUESTION
    )
    assert len(transcript.rounds) == 4
    assert transcript.stop_reason == "iterations"


def test_text_similarity_ignores_case_punctuation_and_spacing() -> None:
    assert text_similarity("The answer is 42.", "the  answer is 42") == 1.0
    assert text_similarity("The answer is 42.", "The answer is 41.") == 0.75
    assert text_similarity("", "") == 1.0


async def test_without_streaming_the_aggregate_arrives_whole() -> None:
    streamed: list[str] = []

    class StreamSpy(FakeProvider):
        def stream(
            self, model: str, messages: Sequence[Message], options: SamplingOptions
        ) -> AsyncIterator[StreamItem]:
            streamed.append(model)
            return super().stream(model, messages, options)

    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": echo("a"),
        "agg": FakeModel(default="one two"),
    }
    config = make_config(members=["a"], iterations=0)
    registry = ProviderRegistry(overrides={"openrouter": StreamSpy(fakes)})
    engine = ConsensusEngine(config, build_panel(config, registry))

    events = [e async for e in engine.run(QUESTION, stream_aggregate=False)]
    assert not any(isinstance(e, AggregateDelta) for e in events)
    finished = [e for e in events if isinstance(e, AggregateFinished)]
    assert [e.response.text for e in finished] == ["one two"]
    assert streamed == []

    await engine.run_to_end(QUESTION)
    assert streamed == []
    [e async for e in engine.run(QUESTION)]
    assert streamed == ["agg"]


def transient_then(answer: str) -> FakeModel:
    return FakeModel([ProviderHTTPError("HTTP 500: boom", status_code=500), answer])


async def test_a_first_round_where_no_member_answered_is_asked_once_more() -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": transient_then("a says Paris"),
        "b": transient_then("b says Paris"),
        "c": FakeModel(default=InsufficientCreditsError("c: out of credits")),
        "agg": FakeModel(default="C"),
    }
    events = await collect(make_engine(make_config(iterations=0), fakes))

    done = events[-1]
    assert isinstance(done, ConsensusDone)
    transcript = done.transcript
    assert transcript.answer == "C"
    (round_0,) = transcript.rounds
    assert [r.text for r in round_0.responses[:2]] == ["a says Paris", "b says Paris"]
    assert round_0.responses[2].error is not None  # a bad key is not worth another try
    assert len(fakes["c"].history) == 1
    first_tries = [(r.model, r.error.status_code if r.error else None) for r in round_0.other_calls]
    assert first_tries == [("a", 500), ("b", 500)]
    failed = [e.response.model for e in events if isinstance(e, MemberFailed)]
    assert failed.count("a") == 1
    assert failed.count("b") == 1


async def test_a_round_asked_once_more_that_fails_again_is_lost_with_every_failure() -> None:
    down = ProviderHTTPError("HTTP 503: down", status_code=503)
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": FakeModel(default=down),
        "agg": FakeModel(default="C"),
    }
    with pytest.raises(ConsensusError, match="below the quorum") as caught:
        await make_engine(make_config(("a",)), fakes).run_to_end(QUESTION)

    assert len(fakes["a"].history) == 2
    transcript = caught.value.transcript
    assert transcript is not None
    assert len(transcript.rounds[0].other_calls) == 1


async def test_a_later_round_where_no_member_answered_keeps_its_consensus_unasked() -> None:
    down = ProviderHTTPError("HTTP 503: down", status_code=503)
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": FakeModel(["a says Paris", down, "a says Paris"]),
        "agg": FakeModel(default="C"),
    }
    transcript = await make_engine(make_config(("a",), iterations=1), fakes).run_to_end(QUESTION)

    assert transcript.answer == "C"
    assert transcript.stop_reason == "quorum_lost"
    assert len(fakes["a"].history) == 2
