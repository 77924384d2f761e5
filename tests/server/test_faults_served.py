"""Fault injection through the real service: uvicorn serving conclave, whose members and
aggregator are reached over HTTP at a scripted upstream on 127.0.0.1, and the official openai
client. A failure upstream ends in an answer that reports it, or a clear error; never a 500 or
a stream cut off without an error."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest

from provider_http import ModelUpstream, Streamed, answer_chunks, sse_events

from .conftest import ServeUpstream, read_events

CHAT = {"model": "faulty", "messages": [{"role": "user", "content": "Capital of France?"}]}

Serve = Callable[..., str]


@pytest.fixture
def upstream() -> ModelUpstream:
    return ModelUpstream()


@pytest.fixture
def serve(serve_upstream: ServeUpstream, upstream: ModelUpstream) -> Serve:
    """`serve(**config changes)` starts conclave (members a, b, c, aggregator agg, all at the
    scripted upstream) and returns its base URL; everything stops after the test."""
    return functools.partial(serve_upstream, upstream)


def test_a_dead_member_is_reported_in_the_answer_then_rests_visibly(
    serve: Serve, upstream: ModelUpstream
) -> None:
    upstream.fail("c", *[httpx2.Response(500, json={"error": {"message": "boom"}})] * 10)
    url = serve(breaker_failures=2, breaker_cooldown_s=600)
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)

    answers = [client.chat.completions.with_raw_response.create(**CHAT) for _ in range(3)]  # type: ignore[call-overload]

    bodies = [answer.http_response.json() for answer in answers]
    assert [b["choices"][0]["message"]["content"] for b in bodies] == ["agg says Paris."] * 3
    c_failures = [
        [f["type"] for m in b["conclave"]["members"] if m["model"] == "c" for f in m["failures"]]
        for b in bodies
    ]
    assert c_failures == [["http_error"], ["http_error"], ["cooldown"]]
    transcript = httpx2.get(f"{url}/v1/transcripts/{bodies[2]['conclave']['transcript_id']}").json()
    assert [r["model"] for r in transcript["rounds"][0]["responses"]] == ["a", "b", "c"]
    health = httpx2.get(url + "/health").json()
    breakers = health["breakers"]["faulty"]
    resting = {s["member"].split(" at ")[0]: s["state"] for s in breakers["members"]}
    assert resting == {"a": "closed", "b": "closed", "c": "open"}
    assert breakers["aggregator"]["state"] == "closed"
    assert 'conclave_member_resting{member="c at ' in httpx2.get(url + "/metrics").text
    client.close()


def test_a_member_rate_limited_past_the_deadline_is_reported_at_once(
    serve: Serve, upstream: ModelUpstream
) -> None:
    retry_later = httpx2.Response(
        429, json={"error": {"message": "slow down"}}, headers={"retry-after": "60"}
    )
    upstream.fail("c", retry_later)
    url = serve()

    body = httpx2.post(url + "/v1/chat/completions", json=CHAT, timeout=30).json()

    assert body["choices"][0]["message"]["content"] == "agg says Paris."
    (c,) = [m for m in body["conclave"]["members"] if m["model"] == "c"]
    assert [f["type"] for f in c["failures"]] == ["rate_limited"]
    assert "retry after 60s" in c["failures"][0]["message"]


def read_stream(client: openai.OpenAI, received: list[str]) -> None:
    """Stream an answer to CHAT, appending its text pieces to `received` as they arrive."""
    for chunk in client.chat.completions.create(**CHAT, stream=True):  # type: ignore[call-overload]
        if chunk.choices and chunk.choices[0].delta.content:
            received.append(chunk.choices[0].delta.content)


def broken_aggregate_stream(ending: str) -> Streamed:
    chunks = answer_chunks("agg", ModelUpstream.text("agg"))
    return Streamed(sse_events(*chunks[:2], done=False), ending=ending)  # type: ignore[arg-type]


MEMBER_TEXTS = {ModelUpstream.text(m) for m in ("a", "b", "c")}


def transcript_of(url: str, transcript_id: str) -> dict[str, Any]:
    response = httpx2.get(f"{url}/v1/transcripts/{transcript_id}", timeout=30)
    assert response.status_code == 200
    transcript: dict[str, Any] = response.json()
    return transcript


def assert_voted_after_the_aggregator_failed(transcript: dict[str, Any], error_type: str) -> None:
    """The run kept a consensus: the members' vote, with the failed aggregator call beside it."""
    (record,) = transcript["rounds"]
    assert [r["model"] for r in record["responses"]] == ["a", "b", "c"]
    assert record["decided_by"] == "fallback_vote"
    assert transcript["answer"] in MEMBER_TEXTS
    assert transcript["stop_reason"] == "iterations"
    assert [(c["model"], c["error"]["type"]) for c in record["other_calls"]] == [
        ("agg (aggregator)", error_type)
    ]


@pytest.mark.parametrize(
    ("ending", "error_type"), [("end", "bad_response"), ("reset", "connection_error")]
)
def test_an_aggregator_stream_broken_midway_ends_the_client_stream_with_an_error(
    serve: Serve, upstream: ModelUpstream, ending: str, error_type: str
) -> None:
    upstream.fail("agg", broken_aggregate_stream(ending))
    url = serve()
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)

    received: list[str] = []
    with pytest.raises(openai.APIError, match="aggregator") as caught:
        read_stream(client, received)
    client.close()

    # What came before the break, and never the vote's answer glued after it.
    assert "".join(received) in ("agg", "agg says")
    body = caught.value.body
    assert isinstance(body, dict)
    assert "agg (aggregator)" in body["message"]
    assert body["code"] == "aggregator_failed"
    # The error names the transcript, and the transcript keeps the fallback's consensus.
    named = re.search(r"/v1/transcripts/(\w+)", body["message"])
    assert named is not None, body["message"]
    transcript = transcript_of(url, named.group(1))
    assert_voted_after_the_aggregator_failed(transcript, error_type)


def test_an_aggregator_that_fails_before_writing_streams_the_vote_instead(
    serve: Serve, upstream: ModelUpstream
) -> None:
    upstream.fail("agg", httpx2.Response(500, json={"error": {"message": "agg is down"}}))
    url = serve()
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)

    received: list[str] = []
    read_stream(client, received)
    client.close()

    assert "".join(received) in MEMBER_TEXTS


def test_the_event_stream_voids_a_broken_aggregate_before_the_vote(
    serve: Serve, upstream: ModelUpstream
) -> None:
    upstream.fail("agg", broken_aggregate_stream("reset"))
    url = serve()

    events = read_events(url + "/v1", {"model": "faulty", "messages": CHAT["messages"]})

    kinds = [name for name, _ in events]
    assert kinds.count("aggregate_restarted") == 1
    restart = kinds.index("aggregate_restarted")
    broken = "".join(
        str(data["text"]) for name, data in events[:restart] if name == "aggregate_delta"
    )
    voted = "".join(
        str(data["text"]) for name, data in events[restart:] if name == "aggregate_delta"
    )
    assert broken in ("agg", "agg says")
    failed = events[restart][1]["failed"]
    assert isinstance(failed, dict)
    assert failed["model"] == "agg (aggregator)"
    name, done = events[-1]
    assert name == "done"
    transcript = done["transcript"]
    assert isinstance(transcript, dict)
    assert voted == transcript["answer"]
    assert_voted_after_the_aggregator_failed(transcript, "connection_error")


def test_an_aggregator_failure_is_answered_by_the_vote_and_reported(
    serve: Serve, upstream: ModelUpstream
) -> None:
    upstream.fail(
        "agg",
        httpx2.Response(200, content=b"{garbage", headers={"content-type": "application/json"}),
    )
    url = serve()

    response = httpx2.post(url + "/v1/chat/completions", json=CHAT, timeout=30)

    assert response.status_code == 200
    body = response.json()
    assert body["choices"][0]["message"]["content"] in MEMBER_TEXTS
    assert body["conclave"]["decided_by"] == "fallback_vote"
    transcript = transcript_of(url, body["conclave"]["transcript_id"])
    assert transcript["answer"] == body["choices"][0]["message"]["content"]
    assert_voted_after_the_aggregator_failed(transcript, "bad_response")
