"""OpenAICompatibleProvider against a scripted OpenAI-compatible server (httpx2.MockTransport)."""

from __future__ import annotations

import json
import math
import socket
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx2
import openai
import pytest

from conclave.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeoutError,
    RateLimitedError,
)
from conclave.providers import openai_compat
from conclave.providers.openai_compat import (
    HttpTransport,
    OpenAICompatibleProvider,
    make_http_client,
)
from conclave.providers.retries import AT_ONCE_S
from conclave.types import Completion, Message, SamplingOptions, TextDelta
from provider_http import ScriptedServer, collect

BASE_URL = "http://127.0.0.1:8080/v1"
MODEL = "qwen2.5-0.5b-instruct"
QUESTION = [Message(role="user", content="What is the capital of France?")]


def completion_json(
    content: str | None = "Paris.", finish_reason: str = "stop"
) -> dict[str, object]:
    """A llama.cpp-style answer: OpenAI's shape, no cost."""
    return {
        "id": "chatcmpl-Vf3kX0",
        "object": "chat.completion",
        "created": 1747311823,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 17, "completion_tokens": 3, "total_tokens": 20},
    }


def choices(body: dict[str, object]) -> list[dict[str, object]]:
    found = body["choices"]
    assert isinstance(found, list)
    return found


def sse(*events: object) -> httpx2.Response:
    lines = [f"data: {json.dumps(event)}\n\n" for event in events]
    return httpx2.Response(
        200,
        content="".join(lines).encode(),
        headers={"content-type": "text/event-stream"},
    )


def chunk(content: str, finish_reason: str | None = None) -> dict[str, object]:
    return {
        "id": "chatcmpl-Vf3kX0",
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish_reason}],
    }


def make_provider(
    server: ScriptedServer, *, api_key: str | None = None, max_retries: int = 2
) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        base_url=BASE_URL,
        api_key=api_key,
        name="llama-server",
        max_retries=max_retries,
        http_client=server.client(),
    )


async def test_complete_returns_text_finish_reason_usage_and_latency() -> None:
    server = ScriptedServer(httpx2.Response(200, json=completion_json()))
    provider = make_provider(server)

    completion = await provider.complete(MODEL, QUESTION, SamplingOptions())

    assert completion.model == MODEL
    assert completion.text == "Paris."
    assert completion.finish_reason == "stop"
    assert completion.usage.prompt_tokens == 17
    assert completion.usage.completion_tokens == 3
    assert completion.usage.cost_usd is None
    assert completion.latency_s > 0


async def test_request_carries_model_messages_and_only_the_options_set() -> None:
    server = ScriptedServer(httpx2.Response(200, json=completion_json()))
    provider = make_provider(server)
    messages = [Message(role="system", content="Be brief."), *QUESTION]
    options = SamplingOptions(max_tokens=64, temperature=0.3, seed=7, stop=("\n\n",))

    await provider.complete(MODEL, messages, options)

    request = server.requests[0]
    assert request.method == "POST"
    assert str(request.url) == f"{BASE_URL}/chat/completions"
    assert server.body() == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        "max_tokens": 64,
        "temperature": 0.3,
        "seed": 7,
        "stop": ["\n\n"],
    }


async def test_a_chat_request_is_on_the_wire_what_the_sdk_itself_sends() -> None:
    """The provider builds its chat requests from the SDK's own, once: URL, headers, timeout
    and body must be those of the SDK's `post` with the same arguments, retry after retry."""
    server = ScriptedServer(*[httpx2.Response(200, json=completion_json()) for _ in range(4)])
    provider = OpenAICompatibleProvider(
        base_url=BASE_URL,
        api_key="sk-local-123",
        default_headers={"X-Title": "conclave tests"},
        timeout_s=42.0,
        http_client=server.client(),
    )
    options = SamplingOptions(max_tokens=64, temperature=0.3, stop=("\n\n",))
    body = openai_compat._chat_request(MODEL, QUESTION, options, stream=False)

    for retry in (0, 2):
        await provider._post_chat(body, retry)
        await provider._client.post(
            "/chat/completions",
            cast_to=httpx2.Response,
            body=body,
            options=provider._chat_request_options(retry),
        )
        ours, sdk = server.requests[-2:]
        assert (ours.method, ours.url, ours.content) == (sdk.method, sdk.url, sdk.content)
        assert sorted(ours.headers.multi_items()) == sorted(sdk.headers.multi_items())
        assert ours.extensions["timeout"] == sdk.extensions["timeout"]
        assert ours.headers["x-stainless-retry-count"] == str(retry)


async def test_asked_for_logprobs_the_answer_carries_its_token_probability() -> None:
    body = completion_json()
    choice = body["choices"][0]  # type: ignore[index]
    choice["logprobs"] = {
        "content": [{"token": "Par", "logprob": -0.1}, {"token": "is", "logprob": -0.3}]
    }
    server = ScriptedServer(httpx2.Response(200, json=body))

    answer = await make_provider(server).complete(MODEL, QUESTION, SamplingOptions(logprobs=True))

    sent = server.body()
    assert isinstance(sent, dict)
    assert sent["logprobs"] is True
    assert answer.token_probability == pytest.approx(math.exp(-0.2))


async def test_without_logprobs_the_token_probability_is_unknown() -> None:
    server = ScriptedServer(httpx2.Response(200, json=completion_json()))
    answer = await make_provider(server).complete(MODEL, QUESTION, SamplingOptions())
    sent = server.body()
    assert isinstance(sent, dict)
    assert "logprobs" not in sent
    assert answer.token_probability is None


async def test_keyless_server_gets_a_placeholder_never_the_environment_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key")
    server = ScriptedServer(httpx2.Response(200, json=completion_json()))
    provider = make_provider(server, api_key=None)

    await provider.complete(MODEL, QUESTION, SamplingOptions())

    authorization = server.requests[0].headers["authorization"]
    assert authorization.startswith("Bearer ")
    assert "sk-real-openai-key" not in authorization


async def test_given_key_is_sent_as_bearer_token() -> None:
    server = ScriptedServer(httpx2.Response(200, json=completion_json()))
    provider = make_provider(server, api_key="sk-local-123")

    await provider.complete(MODEL, QUESTION, SamplingOptions())

    assert server.requests[0].headers["authorization"] == "Bearer sk-local-123"


async def test_stream_yields_deltas_then_exactly_one_completion() -> None:
    usage = {"prompt_tokens": 17, "completion_tokens": 3, "total_tokens": 20}
    final = {"id": "chatcmpl-Vf3kX0", "object": "chat.completion.chunk", "choices": []}
    server = ScriptedServer(
        sse(chunk("Par"), chunk("is"), chunk(".", "stop"), {**final, "usage": usage})
    )
    provider = make_provider(server)

    items = await collect(provider.stream(MODEL, QUESTION, SamplingOptions(max_tokens=8)))

    assert items[:-1] == [TextDelta(text="Par"), TextDelta(text="is"), TextDelta(text=".")]
    final_item = items[-1]
    assert isinstance(final_item, Completion)
    assert final_item.text == "Paris."
    assert final_item.finish_reason == "stop"
    assert (final_item.usage.prompt_tokens, final_item.usage.completion_tokens) == (17, 3)
    body = server.body()
    assert isinstance(body, dict)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 8


class TrackedBody(httpx2.AsyncByteStream):
    """An SSE body that records whether the client closed it."""

    def __init__(self, *events: object) -> None:
        self.payload = "".join(f"data: {json.dumps(event)}\n\n" for event in events).encode()
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.payload

    async def aclose(self) -> None:
        self.closed = True


async def test_stream_closes_the_response_when_the_consumer_stops_early() -> None:
    body = TrackedBody(chunk("Par"), chunk("is"), chunk(".", "stop"))
    server = ScriptedServer(
        httpx2.Response(200, stream=body, headers={"content-type": "text/event-stream"})
    )
    provider = make_provider(server)

    items = provider.stream(MODEL, QUESTION, SamplingOptions())
    assert isinstance(items, AsyncGenerator)
    assert await anext(items) == TextDelta(text="Par")
    await items.aclose()

    assert body.closed


async def test_stream_that_ends_before_the_model_finished_raises() -> None:
    server = ScriptedServer(sse(chunk("The capital"), chunk(" of")))
    provider = make_provider(server)

    with pytest.raises(ProviderResponseError, match="ended before the model finished"):
        await collect(provider.stream(MODEL, QUESTION, SamplingOptions()))


@pytest.mark.parametrize(
    "error_event",
    [
        pytest.param(
            {"error": {"message": "The server had an error", "type": "server_error"}},
            id="openai-style",
        ),
        pytest.param(
            {
                **chunk(""),
                "error": {"code": "server_error", "message": "The server had an error"},
            },
            id="string-code",
        ),
    ],
)
async def test_error_object_inside_a_stream_raises(error_event: dict[str, object]) -> None:
    server = ScriptedServer(sse(chunk("Par"), error_event))
    provider = make_provider(server)
    received: list[TextDelta | Completion] = []

    with pytest.raises(ProviderError, match="The server had an error") as caught:
        await collect(provider.stream(MODEL, QUESTION, SamplingOptions()), into=received)

    assert received == [TextDelta(text="Par")]
    assert caught.value.model == MODEL
    assert "llama-server" in str(caught.value)


async def test_finish_reason_error_without_error_object_raises() -> None:
    server = ScriptedServer(httpx2.Response(200, json=completion_json("Pa", "error")))
    provider = make_provider(server)

    with pytest.raises(ProviderError, match="stopped with an error"):
        await provider.complete(MODEL, QUESTION, SamplingOptions())


async def test_list_models_reads_the_openai_model_list() -> None:
    listing = {
        "object": "list",
        "data": [
            {"id": "qwen2.5-0.5b-instruct", "object": "model", "created": 1, "owned_by": "me"},
            {"id": "llama-3.2-1b", "object": "model", "created": 2, "owned_by": "me"},
        ],
    }
    server = ScriptedServer(httpx2.Response(200, json=listing))
    provider = make_provider(server)

    models = await provider.list_models()

    assert [m.id for m in models] == ["qwen2.5-0.5b-instruct", "llama-3.2-1b"]
    assert {m.provider for m in models} == {"llama-server"}
    assert str(server.requests[0].url) == f"{BASE_URL}/models"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": {"message": "'messages' must not be empty", "type": "invalid_request"}}),
        (401, {"error": {"message": "Invalid API key", "code": 401}}),
        (404, {"error": {"message": "model 'nope' not found", "code": 404}}),
    ],
)
async def test_client_errors_become_http_errors_without_retry(
    status: int, body: dict[str, dict[str, object]]
) -> None:
    server = ScriptedServer(httpx2.Response(status, json=body))
    provider = make_provider(server)

    with pytest.raises(ProviderHTTPError) as caught:
        await provider.complete(MODEL, QUESTION, SamplingOptions())

    error = caught.value
    assert type(error) is ProviderHTTPError
    assert error.status_code == status
    assert str(body["error"]["message"]) in str(error)
    assert MODEL in str(error)
    assert "llama-server" in str(error)
    assert json.loads(error.body) == body
    assert len(server.requests) == 1


async def test_server_errors_are_retried_then_reported(sleeps: list[float]) -> None:
    server = ScriptedServer(
        *(httpx2.Response(503, json={"error": {"message": "loading model"}}) for _ in range(3))
    )
    provider = make_provider(server, max_retries=2)

    with pytest.raises(ProviderHTTPError) as caught:
        await provider.complete(MODEL, QUESTION, SamplingOptions())

    assert caught.value.status_code == 503
    assert "loading model" in str(caught.value)
    assert len(server.requests) == 3
    assert len(sleeps) == 2


async def test_a_server_error_answered_at_once_is_retried_at_once_then_after_a_backoff(
    sleeps: list[float],
) -> None:
    server = ScriptedServer(
        *(httpx2.Response(500, json={"error": {"message": "bad backend"}}) for _ in range(3))
    )
    provider = make_provider(server, max_retries=2)

    with pytest.raises(ProviderHTTPError):
        await provider.complete(MODEL, QUESTION, SamplingOptions())

    assert len(server.requests) == 3
    first, second = sleeps
    assert 0 < first <= AT_ONCE_S  # a fast 500: one bad request, not a loaded server
    assert 0.375 <= second <= 0.5  # then the SDK's first backoff step


async def test_a_rate_limit_answered_at_once_is_still_backed_off(sleeps: list[float]) -> None:
    server = ScriptedServer(
        httpx2.Response(429, json={"error": {"message": "slow down"}}),
        httpx2.Response(200, json=completion_json()),
    )
    provider = make_provider(server, max_retries=1)

    await provider.complete(MODEL, QUESTION, SamplingOptions())

    assert len(server.requests) == 2
    assert len(sleeps) == 1
    assert 0.375 <= sleeps[0] <= 0.5


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"retry-after": "7"}, 7.0, id="seconds"),
        pytest.param({"retry-after-ms": "1500"}, 1.5, id="milliseconds"),
        pytest.param({}, None, id="absent"),
    ],
)
async def test_rate_limit_reports_retry_after(
    sleeps: list[float], headers: dict[str, str], expected: float | None
) -> None:
    server = ScriptedServer(
        httpx2.Response(429, json={"error": {"message": "slow down"}}, headers=headers)
    )
    provider = make_provider(server, max_retries=0)

    with pytest.raises(RateLimitedError) as caught:
        await provider.complete(MODEL, QUESTION, SamplingOptions())

    assert caught.value.retry_after_s == expected
    assert caught.value.status_code == 429


async def test_rate_limit_reads_retry_after_as_http_date(sleeps: list[float]) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    server = ScriptedServer(
        httpx2.Response(
            429, json={"error": {"message": "slow down"}}, headers={"retry-after": when}
        )
    )
    provider = make_provider(server, max_retries=0)

    with pytest.raises(RateLimitedError) as caught:
        await provider.complete(MODEL, QUESTION, SamplingOptions())

    assert caught.value.retry_after_s is not None
    assert 27 <= caught.value.retry_after_s <= 30


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(
            httpx2.Response(
                200, text="<html>upstream unavailable</html>", headers={"content-type": "text/html"}
            ),
            id="html",
        ),
        pytest.param(
            httpx2.Response(
                200, text='{"choices": [', headers={"content-type": "application/json"}
            ),
            id="truncated-json",
        ),
        pytest.param(httpx2.Response(200, json={"object": "chat.completion"}), id="no-choices"),
        pytest.param(httpx2.Response(200, json={**completion_json(), "choices": []}), id="empty"),
        pytest.param(httpx2.Response(200, json=completion_json(content=None)), id="null-content"),
        pytest.param(httpx2.Response(200, json=[1, 2, 3]), id="not-an-object"),
    ],
)
async def test_unusable_success_bodies_raise_response_error(response: httpx2.Response) -> None:
    server = ScriptedServer(response)
    provider = make_provider(server)

    with pytest.raises(ProviderResponseError) as caught:
        await provider.complete(MODEL, QUESTION, SamplingOptions())

    assert caught.value.model == MODEL
    assert MODEL in str(caught.value)


async def test_garbage_inside_a_stream_raises_response_error() -> None:
    garbage = httpx2.Response(
        200,
        content=b'data: {"choices": [{"delta": {"content": "Pa"\n\n',
        headers={"content-type": "text/event-stream"},
    )
    server = ScriptedServer(garbage)
    provider = make_provider(server)

    with pytest.raises(ProviderResponseError):
        await collect(provider.stream(MODEL, QUESTION, SamplingOptions()))


async def test_timeouts_are_retried_then_raise_timeout_error(sleeps: list[float]) -> None:
    server = ScriptedServer(*(httpx2.ReadTimeout("timed out") for _ in range(2)))
    provider = make_provider(server, max_retries=1)

    with pytest.raises(ProviderTimeoutError) as caught:
        await provider.complete(MODEL, QUESTION, SamplingOptions())

    assert len(server.requests) == 2
    assert MODEL in str(caught.value)


async def test_refused_connection_raises_connection_error() -> None:
    server = ScriptedServer(httpx2.ConnectError("[Errno 111] Connection refused"))
    provider = make_provider(server, max_retries=0)

    with pytest.raises(ProviderConnectionError, match="Connection refused") as caught:
        await provider.complete(MODEL, QUESTION, SamplingOptions())

    assert "127.0.0.1:8080" in str(caught.value)


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_server_that_is_not_running_is_a_connection_error(transport: HttpTransport) -> None:
    port = closed_port()
    client = make_http_client(transport)
    provider = OpenAICompatibleProvider(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=None, max_retries=0, http_client=client
    )
    try:
        with pytest.raises(ProviderConnectionError) as caught:
            await provider.complete(MODEL, QUESTION, SamplingOptions())
    finally:
        await client.aclose()

    assert f"127.0.0.1:{port}" in str(caught.value)


async def test_aclose_closes_the_client_the_provider_made(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[httpx2.AsyncClient] = []

    def make_and_keep(*args: object, **kwargs: object) -> httpx2.AsyncClient:
        made.append(ScriptedServer().client())
        return made[-1]

    monkeypatch.setattr(openai_compat, "make_http_client", make_and_keep)
    provider = OpenAICompatibleProvider(base_url=BASE_URL, api_key=None)

    await provider.aclose()

    assert len(made) == 1
    assert made[0].is_closed


async def test_aclose_leaves_a_client_it_was_given_open() -> None:
    server = ScriptedServer()
    client = server.client()
    provider = OpenAICompatibleProvider(base_url=BASE_URL, api_key=None, http_client=client)

    await provider.aclose()

    assert not client.is_closed


@pytest.mark.parametrize(
    ("transport", "expected_type"),
    [("aiohttp", openai.DefaultAioHttpClient), ("httpx", httpx2.AsyncClient)],
)
async def test_make_http_client_builds_the_transport_asked_for(
    transport: HttpTransport, expected_type: type[httpx2.AsyncClient]
) -> None:
    client = make_http_client(transport, max_connections=321)
    try:
        assert isinstance(client, expected_type)
        assert (transport == "aiohttp") == isinstance(client, openai.DefaultAioHttpClient)
    finally:
        await client.aclose()
