"""Flare's chat route over plain HTTP, and the consensus event stream."""

from __future__ import annotations

import httpx2
import pytest

from conclave.errors import ProviderHTTPError
from conclave.providers.testing import FakeModel

from .conftest import Served, ServeFactory, default_fakes, make_config, read_events

FLARE_BODY = {"system_message": "Answer briefly.", "user_message": "Capital of France?"}


@pytest.mark.parametrize("path", ["/api/routes/chat/", "/api/routes/chat"])
def test_flare_route_answers_as_flare_does(served: Served, path: str) -> None:
    response = httpx2.post(served.url + path, json=FLARE_BODY, follow_redirects=False)

    assert response.status_code == 200
    body = response.json()
    assert body["response"] == "The capital of France is Paris."
    assert body["transcript_id"] == response.headers["x-conclave-transcript-id"]
    assert [m["model"] for m in body["members"]] == ["a", "b", "c"]
    first_call = served.fakes["a"].history[0]
    assert [(m.role, m.content) for m in first_call.messages] == [
        ("system", "Answer briefly."),
        ("user", "Capital of France?"),
    ]


def test_flare_route_without_a_system_message(served: Served) -> None:
    response = httpx2.post(served.url + "/api/routes/chat/", json={"user_message": "Hi?"})
    assert response.status_code == 200
    assert [m.role for m in served.fakes["a"].history[0].messages] == ["user"]


def test_flare_route_errors_carry_flares_detail_and_openais_error(served: Served) -> None:
    response = httpx2.post(served.url + "/api/routes/chat/", json={"system_message": "x"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["param"] == "user_message"
    assert body["detail"] == body["error"]["message"]


def test_flare_route_below_quorum(serve: ServeFactory) -> None:
    fakes = default_fakes()
    for name in ("a", "b", "c"):
        fakes[name] = FakeModel(default=ProviderHTTPError(f"{name}: HTTP 401", status_code=401))
    served = serve(fakes=fakes)
    response = httpx2.post(served.url + "/api/routes/chat/", json=FLARE_BODY)
    assert response.status_code == 502
    body = response.json()
    assert "0 of 3 members answered" in body["detail"]
    assert [f["model"] for f in body["failures"]] == ["a", "b", "c"]


def test_event_stream_has_every_answer_and_round_in_order(serve: ServeFactory) -> None:
    fakes = default_fakes()
    fakes["c"] = FakeModel(default=ProviderHTTPError("c: HTTP 500", status_code=500))
    served = serve(fakes=fakes)
    events = read_events(
        served.v1, {"model": "panel", "messages": [{"role": "user", "content": "Capital?"}]}
    )

    kinds = [name for name, _ in events]
    assert all(name == data["kind"] for name, data in events)
    assert kinds[0] == "run_started"
    assert kinds[-1] == "done"
    assert kinds.count("round_started") == kinds.count("round_finished") == 2
    assert kinds.count("member_answered") == 4  # a and b, twice
    assert kinds.count("member_failed") == 2
    assert kinds.count("aggregate_delta") > 2
    failed = [data for name, data in events if name == "member_failed"]
    assert failed[0]["response"]["model"] == "c"  # type: ignore[index]
    transcript = events[-1][1]["transcript"]
    assert transcript["answer"] == "The capital of France is Paris."  # type: ignore[index]
    # round 1 starts only after round 0 finished
    assert kinds.index("round_finished") < kinds.index(
        "round_started", 1 + kinds.index("round_started")
    )


def test_event_stream_ends_with_an_error_event_below_quorum(serve: ServeFactory) -> None:
    fakes = default_fakes()
    for name in ("a", "b", "c"):
        fakes[name] = FakeModel(default=ProviderHTTPError(f"{name}: HTTP 500", status_code=500))
    served = serve(fakes=fakes, configs=[make_config()])
    events = read_events(served.v1, {"messages": [{"role": "user", "content": "Capital?"}]})
    name, data = events[-1]
    assert name == "error"
    assert data["error"]["code"] == "quorum_not_reached"  # type: ignore[index]
    failed = [failure["model"] for failure in data["failures"]]  # type: ignore[attr-defined]
    # No member answered, so each was asked once more before the request was given up.
    assert sorted(failed) == ["a", "a", "b", "b", "c", "c"]


def test_event_stream_refuses_an_unknown_preset_with_a_status(served: Served) -> None:
    response = httpx2.post(
        served.v1 + "/consensus/stream",
        json={"model": "nope", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
