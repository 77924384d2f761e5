"""API keys, CORS, size and prompt limits, the cap on concurrent runs, and what must never
reach a response or a log: keys and stack traces."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Sequence
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from conclave.providers.testing import FakeModel, FunctionModel
from conclave.server import ServerSettings
from conclave.server.launch import RedactingFilter
from conclave.server.security import KeyChecker, Redactor
from conclave.types import Message, SamplingOptions

from .conftest import Served, ServeFactory, default_fakes

KEY = "ck-test-0123456789abcdef"
OTHER_KEY = "ck-other-fedcba9876543210"
QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Capital of France?"}]
CHAT = {"model": "default", "messages": QUESTION}


def settings(**values: Any) -> ServerSettings:
    return ServerSettings(_env_file=None, **values)


@pytest.fixture
def keyed(serve: ServeFactory) -> Served:
    return serve(settings=settings(api_keys=f"{KEY},{OTHER_KEY}"))


def wait_until(condition: object, timeout_s: float = 5.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def in_flight(served: Served) -> int:
    return int(httpx2.get(served.url + "/health").json()["runs_in_flight"])


# --- API keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/chat/completions"),
        ("POST", "/api/routes/chat/"),
        ("POST", "/v1/consensus/stream"),
        ("GET", "/v1/models"),
        ("GET", "/v1/transcripts/abc"),
        ("GET", "/metrics"),
        ("GET", "/v1/transcripts"),
        ("GET", "/no/such/route"),
    ],
)
def test_every_route_but_the_open_ones_needs_a_key(keyed: Served, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-key-000000"}, {"Authorization": KEY}):
        response = httpx2.request(method, keyed.url + path, json=CHAT, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert "wrong-key" not in response.text
    assert keyed.fakes["a"].history == []


def test_health_needs_no_key_but_shows_only_that_the_service_is_up(keyed: Served) -> None:
    response = httpx2.get(keyed.url + "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    detailed = httpx2.get(keyed.url + "/health", headers={"Authorization": f"Bearer {KEY}"})
    assert detailed.json()["presets"] == ["default", "panel"]
    assert "breakers" in detailed.json()


def test_the_openai_client_passes_with_either_key(keyed: Served) -> None:
    for key in (KEY, OTHER_KEY):
        api = keyed.openai(key)
        answer = api.chat.completions.create(model="default", messages=QUESTION)
        assert answer.choices[0].message.content == "The capital of France is Paris."
    with pytest.raises(openai.AuthenticationError):
        keyed.openai("nope-nope-nope").models.list()


def test_key_checker_accepts_only_configured_keys() -> None:
    checker = KeyChecker([KEY])
    assert checker.accepts(KEY)
    assert not checker.accepts(KEY[:-1])
    assert not checker.accepts(KEY + "x")
    assert not checker.accepts(None)
    assert KeyChecker([]).accepts(None)


def test_keys_come_comma_separated_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCLAVE_API_KEYS", f" {KEY} , {OTHER_KEY} ")
    monkeypatch.setenv("CONCLAVE_CORS_ORIGINS", "https://a.example,https://b.example")
    loaded = ServerSettings(_env_file=None)
    assert [k.get_secret_value() for k in loaded.api_keys] == [KEY, OTHER_KEY]
    assert loaded.cors_origins == ("https://a.example", "https://b.example")
    assert KEY not in repr(loaded)


# --- CORS ---------------------------------------------------------------------------------------


def test_cors_allows_configured_origins_with_credentials(serve: ServeFactory) -> None:
    served = serve(settings=settings(cors_origins="https://app.example", api_keys=KEY))
    # The headers OpenAI's official JavaScript client sends from a browser.
    sent_by_the_js_client = (
        "authorization, content-type, x-stainless-os, x-stainless-lang, "
        "x-stainless-retry-count, x-stainless-timeout"
    )
    preflight = httpx2.options(
        served.v1 + "/chat/completions",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": sent_by_the_js_client,
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "x-stainless-retry-count" in allowed
    assert "x-stainless-timeout" in allowed
    other = httpx2.get(served.url + "/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_cors_wildcard_never_allows_credentials(serve: ServeFactory) -> None:
    served = serve(settings=settings(cors_origins="*"))
    response = httpx2.get(served.url + "/health", headers={"Origin": "https://any.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


# --- sizes and prompt length --------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413(serve: ServeFactory) -> None:
    served = serve(settings=settings(max_body_bytes=2_000))
    big = {"model": "default", "messages": [{"role": "user", "content": "x" * 3_000}]}
    response = httpx2.post(served.v1 + "/chat/completions", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"

    def chunked() -> object:
        yield b'{"model": "default", "messages": [{"role": "user", "content": "'
        for _ in range(30):
            yield b"x" * 100
        yield b'"}]}'

    streamed = httpx2.post(
        served.v1 + "/chat/completions",
        content=chunked(),  # type: ignore[arg-type]
        headers={"content-type": "application/json"},
    )
    assert streamed.status_code == 413
    assert served.fakes["a"].history == []


def test_a_prompt_over_the_limit_is_a_400_naming_the_field(serve: ServeFactory) -> None:
    served = serve(settings=settings(max_prompt_chars=100, max_messages=3))
    long = {"model": "default", "messages": [{"role": "user", "content": "x" * 101}]}
    response = httpx2.post(served.v1 + "/chat/completions", json=long)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"
    assert response.json()["error"]["code"] == "prompt_too_long"

    flare = httpx2.post(served.url + "/api/routes/chat/", json={"user_message": "y" * 101})
    assert flare.status_code == 400
    assert flare.json()["error"]["param"] == "user_message"

    many = {"model": "default", "messages": QUESTION * 4}
    assert httpx2.post(served.v1 + "/chat/completions", json=many).status_code == 400
    assert served.fakes["a"].history == []


# --- the cap on concurrent runs -----------------------------------------------------------------


def slow_fakes(latency_s: float) -> dict[str, FakeModel | FunctionModel]:
    fakes = default_fakes()
    for fake in fakes.values():
        fake.latency_s = latency_s
    return fakes


def test_a_full_server_answers_429_with_retry_after(serve: ServeFactory) -> None:
    served = serve(fakes=slow_fakes(0.5), settings=settings(max_concurrent_runs=2, retry_after_s=3))
    body = {**CHAT, "stream": True}
    with (
        httpx2.Client(timeout=30) as first,
        httpx2.Client(timeout=30) as second,
        first.stream("POST", served.v1 + "/chat/completions", json=body) as one,
        second.stream("POST", served.v1 + "/chat/completions", json=body) as two,
    ):
        assert one.status_code == two.status_code == 200
        assert in_flight(served) == 2
        full = httpx2.post(served.v1 + "/chat/completions", json=CHAT)
        assert full.status_code == 429
        assert full.headers["retry-after"] == "3"
        assert full.json()["error"]["code"] == "too_many_concurrent_runs"
        api = served.openai("x")
        with pytest.raises(openai.RateLimitError):
            api.chat.completions.create(model="default", messages=QUESTION)
        for response in (one, two):
            assert "data: [DONE]" in list(response.iter_lines())
    wait_until(lambda: in_flight(served) == 0)
    assert httpx2.post(served.v1 + "/chat/completions", json=CHAT, timeout=30).status_code == 200


def test_a_client_that_hangs_up_on_a_stream_frees_its_slot(serve: ServeFactory) -> None:
    served = serve(fakes=slow_fakes(30.0))
    with (
        httpx2.Client(timeout=30) as http,
        http.stream("POST", served.v1 + "/chat/completions", json={**CHAT, "stream": True}) as r,
    ):
        lines = r.iter_lines()
        assert next(lines).startswith("data: ")  # the role chunk came at once
        assert in_flight(served) == 1
    wait_until(lambda: in_flight(served) == 0)
    metrics = httpx2.get(served.url + "/metrics").text
    assert 'conclave_consensus_runs_total{outcome="cancelled",preset="panel"} 1.0' in metrics


def test_a_client_that_hangs_up_on_a_json_request_frees_its_slot(serve: ServeFactory) -> None:
    served = serve(fakes=slow_fakes(30.0))
    host, port = served.url.removeprefix("http://").split(":")
    payload = b'{"model": "default", "messages": [{"role": "user", "content": "hi"}]}'
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        wait_until(lambda: in_flight(served) == 1)
    wait_until(lambda: in_flight(served) == 0)


# --- nothing secret or internal leaks -----------------------------------------------------------


def test_a_provider_bug_is_that_members_failure_and_leaks_no_key(
    serve: ServeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(messages: Sequence[Message], options: SamplingOptions) -> str:
        raise RuntimeError(f"boom with Bearer {KEY} inside")

    fakes = default_fakes()
    fakes["a"] = FunctionModel(broken)
    served = serve(fakes=fakes, settings=settings(api_keys=KEY))
    caplog.set_level(logging.DEBUG)

    response = httpx2.post(
        served.v1 + "/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {KEY}"}
    )
    httpx2.post(
        served.v1 + "/chat/completions",
        json=CHAT,
        headers={"Authorization": "Bearer ck-wrong-key-55555555"},
    )

    assert response.status_code == 200  # b and c answered: the quorum holds
    members = {m["model"]: m for m in response.json()["conclave"]["members"]}
    assert members["a"]["answered"] == 0
    failure = members["a"]["failures"][0]
    assert "RuntimeError: boom with Bearer [redacted] inside" in failure["message"]
    for text in (response.text, caplog.text):
        assert KEY not in text
        assert "ck-wrong-key" not in text
        assert "Traceback" not in text
        assert 'File "' not in text
    metrics = httpx2.get(served.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert 'conclave_consensus_runs_total{outcome="ok",preset="panel"} 1.0' in metrics.text


def test_the_log_filter_redacts_keys_and_drops_tracebacks() -> None:
    try:
        raise ValueError(f"bad {KEY}")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "uvicorn.error", logging.ERROR, __file__, 1, "failed: %s", (KEY,), sys.exc_info()
        )
    assert RedactingFilter(Redactor([KEY])).filter(record)
    formatted = logging.Formatter().format(record)
    assert KEY not in formatted
    assert "Traceback" not in formatted
    assert formatted == "failed: [redacted] (ValueError: bad [redacted])"

    access = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/v1/models?key={KEY}", "1.1", 200), None,
    )  # fmt: skip
    assert RedactingFilter(Redactor([KEY])).filter(access)
    assert isinstance(access.args, tuple)
    assert len(access.args) == 5
    assert access.getMessage() == '127.0.0.1:5 - "GET /v1/models?key=[redacted] HTTP/1.1" 200'


def test_error_messages_are_redacted_of_provider_keys(serve: ServeFactory) -> None:
    from conclave.errors import ProviderHTTPError

    fakes = default_fakes()
    for name in ("a", "b", "c"):
        fakes[name] = FakeModel(
            default=ProviderHTTPError(f"echoed Authorization: Bearer {KEY}", status_code=400)
        )
    served = serve(fakes=fakes, settings=settings(api_keys=KEY))
    response = httpx2.post(
        served.v1 + "/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == 502
    assert KEY not in response.text
    assert "[redacted]" in response.text
