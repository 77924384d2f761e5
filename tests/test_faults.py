"""Fault injection: a consensus whose members and aggregator are reached over HTTP, through the
real OpenAICompatibleProvider and openai SDK, at a scripted upstream on 127.0.0.1 that fails
as real upstreams do. Every run ends in an answer with the failure reported in the transcript,
or in a clear error carrying the whole transcript."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx2
import pytest

from conclave.config import ConsensusConfig
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.events import (
    AggregateDelta,
    AggregateRestarted,
    ConsensusDone,
    ConsensusEvent,
    MemberFailed,
)
from conclave.consensus.panel import build_panel
from conclave.consensus.transcript import CallRecord, Transcript
from conclave.providers.registry import ProviderRegistry
from conclave.providers.retries import AT_ONCE_S, RetryPolicy, call_deadline, failed_fast
from conclave.settings import Settings
from conclave.types import Message
from provider_http import (
    ModelUpstream,
    Reply,
    ScriptedServer,
    Silence,
    Streamed,
    answer_chunks,
    answer_json,
    sse_events,
)

QUESTION = (Message(role="user", content="What is the capital of France?"),)
MEMBER_TIMEOUT_S = 1.0
JSON_HEADERS = {"content-type": "application/json"}

EngineFactory = Callable[..., AbstractAsyncContextManager[ConsensusEngine]]


@pytest.fixture
def upstream() -> ModelUpstream:
    return ModelUpstream()


@pytest.fixture
def server(upstream: ModelUpstream) -> ScriptedServer:
    return ScriptedServer(then=upstream)


@pytest.fixture
def consensus(server: ScriptedServer) -> EngineFactory:
    """`async with consensus(**config changes) as engine`: members a, b, c (c with a 1 s
    timeout) and aggregator agg (and the named fallback aggregator), all at the scripted
    upstream; quorum 2, no improvement round."""

    @asynccontextmanager
    async def start(
        aggregator_timeout_s: float = 5.0,
        fallback_aggregator: str | None = None,
        **changes: object,
    ) -> AsyncIterator[ConsensusEngine]:
        with server.listening() as url:
            data: dict[str, object] = {
                "models": [
                    {"id": "a", "base_url": url},
                    {"id": "b", "base_url": url},
                    {"id": "c", "base_url": url, "timeout_s": MEMBER_TIMEOUT_S},
                ],
                "aggregator": [
                    {"model": {"id": "agg", "base_url": url, "timeout_s": aggregator_timeout_s}}
                ],
                "iterations": 0,
                "quorum": 2,
                "grace_s": 30,
            }
            if fallback_aggregator is not None:
                data["fallback_aggregator"] = {"id": fallback_aggregator, "base_url": url}
            data.update(changes)
            config = ConsensusConfig.model_validate(data)
            registry = ProviderRegistry(Settings(_env_file=None))
            try:
                yield ConsensusEngine(config, build_panel(config, registry))
            finally:
                await registry.aclose()

    return start


async def run(engine: ConsensusEngine) -> tuple[Transcript, list[ConsensusEvent]]:
    events = [event async for event in engine.run(QUESTION)]
    done = events[-1]
    assert isinstance(done, ConsensusDone)
    return done.transcript, events


def requests_for(server: ScriptedServer, model: str) -> int:
    return sum(1 for request in server.requests if json.loads(request.content)["model"] == model)


def member(transcript: Transcript, name: str) -> CallRecord:
    (record,) = [r for r in transcript.rounds[0].responses if r.model == name]
    return record


def complete_transcript(transcript: Transcript) -> None:
    """Every member has its record in every round, and the failures say what happened."""
    for record in transcript.rounds:
        assert [r.model for r in record.responses] == ["a", "b", "c"]
        for response in record.responses:
            assert response.ok or (response.error is not None and response.error.message)


def json_in_pieces(model: str, size: int = 16) -> tuple[bytes, ...]:
    body = json.dumps(answer_json(model, ModelUpstream.text(model))).encode()
    return tuple(body[i : i + size] for i in range(0, len(body), size))


ONCE = range(1, 2)
RETRIED_IN_TIME = range(2, 4)
"""Retried at once, but with a 1 s timeout the second retry's backoff (0.75 to 1 s) usually
would end past the deadline, and is then not made."""
RETRIED = range(1, 4)
"""A failed connection is retried, but a retry that finds the pooled connection dropped
fails before the server sees it: 1 to 3 requests arrive."""

MEMBER_FAULTS: list[object] = [
    pytest.param([Silence()], "timeout", ONCE, id="no-answer"),
    pytest.param(
        [
            httpx2.Response(
                429, json={"error": {"message": "slow down"}}, headers={"retry-after": "30"}
            )
        ],
        "rate_limited",
        ONCE,
        id="429-retry-after-past-the-deadline",
    ),
    *(
        pytest.param(
            [httpx2.Response(status, json={"error": {"message": "upstream broke"}})] * 3,
            "http_error",
            RETRIED_IN_TIME,
            id=f"{status}",
        )
        for status in (500, 502, 503)
    ),
    pytest.param(
        [httpx2.Response(200, content=b'{"choices": [{"mess', headers=JSON_HEADERS)],
        "bad_response",
        ONCE,
        id="garbage-json",
    ),
    pytest.param(
        [Streamed(json_in_pieces("c")[:3], ending="close", headers=JSON_HEADERS)] * 3,
        "connection_error",
        RETRIED,
        id="body-stops-halfway",
    ),
    pytest.param(
        [Streamed(json_in_pieces("c")[:3], ending="reset", headers=JSON_HEADERS)] * 3,
        "connection_error",
        RETRIED,
        id="connection-reset-mid-body",
    ),
    pytest.param(
        [Streamed(json_in_pieces("c"), interval_s=0.2, headers=JSON_HEADERS)],
        "timeout",
        ONCE,
        id="slow-drip-past-the-deadline",
    ),
]


@pytest.mark.parametrize(("replies", "error_type", "requests"), MEMBER_FAULTS)
async def test_a_failing_member_is_reported_and_the_others_answer(
    consensus: EngineFactory,
    server: ScriptedServer,
    upstream: ModelUpstream,
    sleeps: list[float],
    replies: list[Reply],
    error_type: str,
    requests: range,
) -> None:
    upstream.fail("c", *replies)
    async with consensus() as engine:
        transcript, events = await run(engine)

    assert transcript.answer == "agg says Paris."
    complete_transcript(transcript)
    failed = member(transcript, "c")
    assert failed.error is not None
    assert failed.error.type == error_type, failed.error.message
    assert "'c'" in failed.error.message or "c:" in failed.error.message
    assert [e.response.model for e in events if isinstance(e, MemberFailed)] == ["c"]
    assert requests_for(server, "c") in requests


@pytest.mark.parametrize(
    ("retry_after", "waits", "outcome"),
    [
        pytest.param("0.3", [0.3], ("c says Paris.",), id="waited"),
        pytest.param(
            "0.99", [], ("rate_limited: ", "retry after 0.99s"), id="ends-past-the-deadline"
        ),
    ],
)
async def test_a_rate_limit_is_retried_after_the_wait_asked_for_when_it_fits_the_deadline(
    consensus: EngineFactory,
    upstream: ModelUpstream,
    sleeps: list[float],
    retry_after: str,
    waits: list[float],
    outcome: tuple[str, ...],
) -> None:
    upstream.fail("c", httpx2.Response(429, json={}, headers={"retry-after": retry_after}))
    async with consensus() as engine:
        transcript, _ = await run(engine)

    record = member(transcript, "c")
    error = record.error
    described = record.text if error is None else f"{error.type}: {error.message}"
    assert all(fragment in described for fragment in outcome), described
    assert sleeps == waits


async def test_a_straggling_member_is_left_behind_as_late(
    consensus: EngineFactory, upstream: ModelUpstream
) -> None:
    upstream.fail("c", Silence())
    async with consensus(grace_s=0.05) as engine:
        transcript, _ = await run(engine)

    assert transcript.answer == "agg says Paris."
    late = member(transcript, "c")
    assert late.error is not None
    assert late.error.type == "late"
    assert 0 < late.latency_s < MEMBER_TIMEOUT_S


def aggregate_stream(ending: str, *, whole: bool = False, interval_s: float = 0.0) -> Streamed:
    chunks = answer_chunks("agg", ModelUpstream.text("agg"))
    if whole:
        return Streamed(sse_events(*chunks), interval_s=interval_s)
    return Streamed(sse_events(*chunks[:2], done=False), interval_s=interval_s, ending=ending)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stream", "error_type"),
    [
        pytest.param(aggregate_stream("end"), "bad_response", id="stream-stops-halfway"),
        pytest.param(aggregate_stream("close"), "connection_error", id="stream-closed-halfway"),
        pytest.param(
            aggregate_stream("reset"), "connection_error", id="connection-reset-mid-stream"
        ),
        pytest.param(aggregate_stream("hang"), "timeout", id="stream-stalls"),
        pytest.param(
            aggregate_stream("end", whole=True, interval_s=0.3),
            "timeout",
            id="slow-drip-past-the-deadline",
        ),
    ],
)
async def test_an_aggregator_stream_that_breaks_is_voided_and_the_answers_are_voted(
    consensus: EngineFactory, upstream: ModelUpstream, stream: Streamed, error_type: str
) -> None:
    upstream.fail("agg", stream)
    async with consensus(aggregator_timeout_s=1.0) as engine:
        transcript, events = await run(engine)

    complete_transcript(transcript)
    assert all(r.ok for r in transcript.rounds[0].responses)
    record = transcript.rounds[0]
    assert record.decided_by == "fallback_vote"
    assert record.aggregate is not None
    assert record.aggregate.ok
    assert transcript.answer == record.aggregate.text
    assert transcript.answer in {ModelUpstream.text(m) for m in ("a", "b", "c")}
    assert transcript.stop_reason == "iterations"
    (failed,) = record.other_calls  # the broken aggregator call, kept and named
    assert failed.model == "agg (aggregator)"
    assert failed.error is not None
    assert failed.error.type == error_type, failed.error.message
    # Its streamed text is voided before the vote's: no reader appends one to the other.
    (restart,) = [e for e in events if isinstance(e, AggregateRestarted)]
    assert restart.failed == failed
    before = events[: events.index(restart)]
    after = events[events.index(restart) :]
    assert "".join(e.text for e in before if isinstance(e, AggregateDelta)) in (
        "agg",
        "agg says",
        "agg says Paris.",  # the slow drip sent it all, but not its end, in time
    )
    assert "".join(e.text for e in after if isinstance(e, AggregateDelta)) == transcript.answer


async def test_a_broken_aggregator_hands_over_to_the_fallback_aggregator(
    consensus: EngineFactory, upstream: ModelUpstream, server: ScriptedServer
) -> None:
    upstream.fail("agg", aggregate_stream("reset"))
    async with consensus(fallback_aggregator="backup") as engine:
        transcript, events = await run(engine)

    record = transcript.rounds[0]
    assert record.decided_by == "fallback_aggregator"
    assert transcript.answer == ModelUpstream.text("backup")
    assert [(c.model, c.error.type if c.error else None) for c in record.other_calls] == [
        ("agg (aggregator)", "connection_error")
    ]
    assert requests_for(server, "backup") == 1
    assert sum(isinstance(e, AggregateRestarted) for e in events) == 1


async def test_a_slow_drip_stream_within_the_deadline_gives_the_whole_answer(
    consensus: EngineFactory, upstream: ModelUpstream
) -> None:
    upstream.fail("agg", aggregate_stream("end", whole=True, interval_s=0.05))
    async with consensus() as engine:
        transcript, events = await run(engine)

    pieces = "".join(e.text for e in events if isinstance(e, AggregateDelta))
    assert pieces == transcript.answer == "agg says Paris."


def test_the_retry_policy_is_the_sdks_bounded_by_the_deadline() -> None:
    policy = RetryPolicy(max_retries=2)

    first, second = policy.wait_before_retry_s(1, None), policy.wait_before_retry_s(2, None)
    assert first is not None
    assert 0.375 <= first <= 0.5  # 0.5 s less up to 25% jitter, doubling
    assert second is not None
    assert 0.75 <= second <= 1.0
    assert policy.wait_before_retry_s(3, None) is None  # retries spent
    assert policy.wait_before_retry_s(1, 7.0) == 7.0  # Retry-After honoured
    assert policy.wait_before_retry_s(1, 600.0) is None  # asks too much: not retried
    with call_deadline(5.0):
        assert policy.wait_before_retry_s(1, 4.0) == 4.0
        assert policy.wait_before_retry_s(1, 5.0) is None  # would end past the deadline
        with call_deadline(60.0):  # an outer, earlier deadline still holds
            assert policy.wait_before_retry_s(1, 5.0) is None


def test_a_fast_failure_backs_off_one_step_less_its_first_retry_at_once() -> None:
    policy = RetryPolicy(max_retries=3)

    at_once = policy.wait_before_retry_s(1, None, failed_fast=True)
    assert at_once is not None
    assert 0 < at_once <= AT_ONCE_S
    second = policy.wait_before_retry_s(2, None, failed_fast=True)
    assert second is not None
    assert 0.375 <= second <= 0.5  # the SDK's first step
    third = policy.wait_before_retry_s(3, None, failed_fast=True)
    assert third is not None
    assert 0.75 <= third <= 1.0
    assert policy.wait_before_retry_s(1, 7.0, failed_fast=True) == 7.0  # Retry-After wins
    assert policy.wait_before_retry_s(4, None, failed_fast=True) is None  # retries spent


def test_only_server_errors_and_failed_connections_that_came_back_soon_fail_fast() -> None:
    assert failed_fast(0.01, 500)
    assert failed_fast(0.01, 503)
    assert failed_fast(0.01, None)  # a refused connection
    assert not failed_fast(0.01, 429)  # a rate limit asks for a wait
    assert not failed_fast(0.01, 408)
    assert not failed_fast(5.0, 500)  # a slow 500: the server may be struggling


def failing_after(delay_s: float) -> Streamed:
    """An HTTP 500 whose status line comes `delay_s` seconds after the request."""
    body = json.dumps({"error": {"message": "upstream broke"}}).encode()
    return Streamed((body,), status=500, headers=JSON_HEADERS, delay_s=delay_s)


async def test_a_member_failing_after_the_grace_is_not_retried_while_the_round_waits(
    consensus: EngineFactory, server: ScriptedServer, upstream: ModelUpstream
) -> None:
    upstream.fail("c", failing_after(0.4), failing_after(0.4))
    async with consensus(grace_s=None) as engine:
        transcript, _ = await run(engine)

    failed = member(transcript, "c")
    assert failed.error is not None
    assert failed.error.type == "http_error", failed.error.message
    assert requests_for(server, "c") == 1
    assert transcript.answer == "agg says Paris."


async def test_a_member_still_retrying_when_the_grace_ends_is_left_behind(
    consensus: EngineFactory, server: ScriptedServer, upstream: ModelUpstream
) -> None:
    upstream.fail("c", httpx2.Response(500, json={"error": {"message": "broke"}}), Silence())
    async with consensus(grace_s=None) as engine:
        transcript, _ = await run(engine)

    late = member(transcript, "c")
    assert late.error is not None
    assert late.error.type == "late", late.error.message
    assert late.latency_s < MEMBER_TIMEOUT_S
    assert requests_for(server, "c") == 2
