"""No slow path, as a client of the service sees it, against a scripted upstream over HTTP:
once every member rests the 502 comes at once and tells OpenAI's client not to retry it; once
the aggregator rests the vote answers without calling it; every fallback is named in the
answer, the OpenAI stream, the event stream, `/health` and `/metrics`."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
import openai
import pytest

from provider_http import ModelUpstream, Reply

from .conftest import UPSTREAM_PRESET, ServeUpstream, read_events

CHAT: dict[str, object] = {
    "model": UPSTREAM_PRESET,
    "messages": [{"role": "user", "content": "Capital of France?"}],
}
DOWN = httpx2.Response(500, json={"error": {"message": "upstream down"}})


class CountingUpstream(ModelUpstream):
    """ModelUpstream that counts the calls each model receives."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}

    def __call__(self, request: httpx2.Request) -> Reply:
        model = json.loads(request.content)["model"]
        self.calls[model] = self.calls.get(model, 0) + 1
        return super().__call__(request)


@pytest.fixture
def upstream() -> CountingUpstream:
    return CountingUpstream()


def metric(url: str, line_start: str) -> float:
    for line in httpx2.get(url + "/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- every member down ---------------------------------------------------------------------------


def test_with_every_member_resting_the_502_is_immediate_and_not_retried(
    serve_upstream: ServeUpstream, upstream: CountingUpstream
) -> None:
    for member in ("a", "b", "c"):
        upstream.fail(member, *[DOWN] * 50)
    url = serve_upstream(upstream, breaker_failures=2, breaker_cooldown_s=600)
    for _ in range(2):  # the members fail twice each: their breakers open
        assert httpx2.post(url + "/v1/chat/completions", json=CHAT).status_code == 502
    calls_before = dict(upstream.calls)

    response = httpx2.post(url + "/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    assert response.headers["x-should-retry"] == "false"
    assert "resting" in response.json()["error"]["message"]

    # The official client, with its default retries, asks once and gives up at once.
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused")  # max_retries=2
    for stream in (False, True):
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(**CHAT, stream=stream)  # type: ignore[call-overload]
        assert caught.value.status_code == 502
    client.close()
    started = time.perf_counter()
    for _ in range(5):
        assert httpx2.post(url + "/v1/chat/completions", json=CHAT).status_code == 502
    assert (time.perf_counter() - started) / 5 < 0.3
    assert upstream.calls == calls_before  # no member was called again
    route = 'conclave_http_requests_total{method="POST",route="/v1/chat/completions",status="502"}'
    assert metric(url, route) == 2 + 1 + 2 + 5  # each client request reached the service once


def test_a_502_worth_retrying_says_nothing_against_it(
    serve_upstream: ServeUpstream, upstream: CountingUpstream
) -> None:
    for member in ("a", "b", "c"):
        upstream.fail(member, DOWN, DOWN)  # the first try and the one more the round gives
    url = serve_upstream(upstream, breaker_failures=5)

    response = httpx2.post(url + "/v1/chat/completions", json=CHAT)

    assert response.status_code == 502
    assert "x-should-retry" not in response.headers


# --- the aggregator down -------------------------------------------------------------------------


def test_a_resting_aggregator_is_not_called_and_the_vote_is_named_everywhere(
    serve_upstream: ServeUpstream, upstream: CountingUpstream
) -> None:
    upstream.fail("agg", *[DOWN] * 50)
    url = serve_upstream(upstream, breaker_failures=2, breaker_cooldown_s=600)
    first = [httpx2.post(url + "/v1/chat/completions", json=CHAT).json() for _ in range(2)]
    assert upstream.calls["agg"] == 2

    answer = httpx2.post(url + "/v1/chat/completions", json=CHAT).json()

    assert upstream.calls["agg"] == 2  # resting: not called
    assert answer["choices"][0]["message"]["content"] in {
        ModelUpstream.text(member) for member in ("a", "b", "c")
    }
    summary = answer["conclave"]
    assert summary["decided_by"] == "fallback_vote"
    ((fallback),) = summary["fallbacks"]
    assert fallback["decided_by"] == "fallback_vote"
    assert [(f["model"], f["type"]) for f in fallback["failed"]] == [
        ("agg (aggregator)", "cooldown")
    ]
    assert [f["type"] for f in first[0]["conclave"]["fallbacks"][0]["failed"]] == ["http_error"]

    # The OpenAI stream names it in its last chunk.
    with openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as client:
        chunks = list(client.chat.completions.create(**CHAT, stream=True))  # type: ignore[call-overload]
    last = chunks[-1].model_extra or {}
    assert last["conclave"]["decided_by"] == "fallback_vote"
    assert last["conclave"]["fallbacks"][0]["failed"][0]["type"] == "cooldown"

    # The event stream says it as it happens.
    events = read_events(url + "/v1", CHAT)
    fell_back: list[Any] = [data for name, data in events if name == "combiner_fell_back"]
    assert [(e["fallback"], e["failed"]["model"]) for e in fell_back] == [
        ("fallback_vote", "agg (aggregator)")
    ]

    # /health (trusted: this machine, no keys) shows the aggregator's breaker open.
    breakers = httpx2.get(url + "/health").json()["breakers"][UPSTREAM_PRESET]
    assert breakers["aggregator"]["state"] == "open"
    assert {member["state"] for member in breakers["members"]} == {"closed"}
    assert metric(url, "conclave_aggregator_resting{") == 1
    fallbacks = "conclave_consensus_fallbacks_total{"
    assert metric(url, fallbacks + f'decided_by="fallback_vote",preset="{UPSTREAM_PRESET}"}}') == 5
