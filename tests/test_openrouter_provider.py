"""OpenRouterProvider against OpenRouter's recorded responses, served by httpx2.MockTransport."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from conclave.errors import (
    InsufficientCreditsError,
    MissingCredentialsError,
    ProviderError,
    ProviderResponseError,
    ProviderTimeoutError,
    RateLimitedError,
)
from conclave.providers.openrouter import (
    OpenRouterCredits,
    OpenRouterKeyInfo,
    OpenRouterProvider,
    OpenRouterRateLimit,
)
from conclave.types import Completion, Message, SamplingOptions, TextDelta
from provider_http import Reply, ScriptedServer, collect

FIXTURES = Path(__file__).parent / "fixtures" / "openrouter"
KEY = "sk-or-v1-0123456789abcdef"
MODEL = "openai/gpt-4o-mini"
QUESTION = [Message(role="user", content="What is the capital of France?")]


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def json_reply(name: str, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return httpx2.Response(
        status,
        content=fixture_text(name).encode(),
        headers={"content-type": "application/json", **(headers or {})},
    )


def sse_reply(name: str) -> Reply:
    return httpx2.Response(
        200,
        content=fixture_text(name).encode(),
        headers={"content-type": "text/event-stream", "x-generation-id": "gen-1747311900"},
    )


class RecordedOpenRouter(ScriptedServer):
    """Serves recorded OpenRouter replies in order and keeps every request it received."""

    def provider(self, api_key: str | None = KEY, **options: Any) -> OpenRouterProvider:
        return OpenRouterProvider(api_key=api_key, http_client=self.client(), **options)


async def test_models_are_listed_with_context_length_and_prices_per_token() -> None:
    server = RecordedOpenRouter(json_reply("models.json"))

    models = {m.id: m for m in await server.provider().list_models()}

    mini = models["openai/gpt-4o-mini"]
    assert mini.name == "OpenAI: GPT-4o-mini"
    assert mini.provider == "openrouter"
    assert mini.context_length == 128000
    assert mini.prompt_price_usd == pytest.approx(0.15e-6)
    assert mini.completion_price_usd == pytest.approx(0.6e-6)
    assert not mini.free
    llama = models["meta-llama/llama-3.3-70b-instruct:free"]
    assert llama.free
    assert llama.context_length == 131072
    router = models["openrouter/auto"]
    assert router.prompt_price_usd is None  # "-1": the price depends on the model it routes to
    assert not router.free
    assert str(server.requests[0].url) == "https://openrouter.ai/api/v1/models"


async def test_models_are_listed_without_a_key_and_without_credentials() -> None:
    server = RecordedOpenRouter(json_reply("models.json"))

    models = await server.provider(api_key=None).list_models()

    assert len(models) == 3
    assert "authorization" not in server.requests[0].headers


async def test_credits_report_total_usage_and_remaining() -> None:
    server = RecordedOpenRouter(json_reply("credits.json"))

    credits = await server.provider().credits()

    assert credits == OpenRouterCredits(total_credits=25, total_usage=7.4213651875)
    assert credits.remaining == pytest.approx(17.5786348125)
    request = server.requests[0]
    assert request.method == "GET"
    assert str(request.url) == "https://openrouter.ai/api/v1/credits"
    assert request.headers["authorization"] == f"Bearer {KEY}"


async def test_key_info_reports_usage_limits_tier_and_rate_limit() -> None:
    server = RecordedOpenRouter(json_reply("key.json"))

    info = await server.provider().key_info()

    assert info == OpenRouterKeyInfo(
        label="sk-or-v1-116...0ce",
        usage=0.1015644762,
        limit=10,
        limit_remaining=9.8984355238,
        limit_reset="monthly",
        is_free_tier=False,
        rate_limit=OpenRouterRateLimit(requests=50, interval="10s"),
    )
    assert str(server.requests[0].url) == "https://openrouter.ai/api/v1/key"
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_key_without_a_spending_limit_has_no_limit() -> None:
    body = {"data": {"label": "ci", "usage": 0, "limit": None, "limit_remaining": None}}
    server = RecordedOpenRouter(httpx2.Response(200, json=body))

    info = await server.provider().key_info()

    assert info.limit is None
    assert info.limit_remaining is None
    assert info.rate_limit is None


async def test_completion_carries_text_tokens_and_cost_in_dollars() -> None:
    server = RecordedOpenRouter(json_reply("chat_completion.json"))

    completion = await server.provider().complete(MODEL, QUESTION, SamplingOptions())

    assert completion.model == MODEL
    assert completion.text == "The capital of France is Paris."
    assert completion.finish_reason == "stop"
    assert completion.usage.prompt_tokens == 14
    assert completion.usage.completion_tokens == 8
    assert completion.usage.cost_usd == pytest.approx(0.0000069)


async def test_the_request_sent_carries_auth_attribution_options_and_usage_accounting() -> None:
    server = RecordedOpenRouter(json_reply("chat_completion.json"))
    provider = server.provider(app_url="https://example.org/panel", app_title="Panel Lab")
    messages = [Message(role="system", content="Answer in one sentence."), *QUESTION]

    await provider.complete(MODEL, messages, SamplingOptions(max_tokens=256, temperature=0.7))

    request = server.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://openrouter.ai/api/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["http-referer"] == "https://example.org/panel"
    assert request.headers["x-openrouter-title"] == "Panel Lab"
    assert request.headers["x-title"] == "Panel Lab"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        "max_tokens": 256,
        "temperature": 0.7,
        "usage": {"include": True},
    }


async def test_default_attribution_names_conclave() -> None:
    server = RecordedOpenRouter(json_reply("chat_completion.json"))

    await server.provider().complete(MODEL, QUESTION, SamplingOptions())

    headers = server.requests[0].headers
    assert headers["http-referer"] == "https://github.com/conclave-ai/conclave"
    assert headers["x-openrouter-title"] == "conclave"


async def test_rate_limit_is_retried_after_the_time_the_server_asks(sleeps: list[float]) -> None:
    server = RecordedOpenRouter(
        json_reply("error_429.json", 429, {"retry-after": "7"}),
        json_reply("chat_completion.json"),
    )

    completion = await server.provider().complete(MODEL, QUESTION, SamplingOptions())

    assert completion.text == "The capital of France is Paris."
    assert len(server.requests) == 2
    assert sleeps == [7.0]
    assert server.requests[1].headers["x-stainless-retry-count"] == "1"


async def test_rate_limit_that_outlasts_the_retries_raises_with_retry_after(
    sleeps: list[float],
) -> None:
    server = RecordedOpenRouter(
        *(json_reply("error_429.json", 429, {"retry-after": "3"}) for _ in range(3))
    )

    with pytest.raises(RateLimitedError) as caught:
        await server.provider(max_retries=2).complete(MODEL, QUESTION, SamplingOptions())

    error = caught.value
    assert error.retry_after_s == 3.0
    assert error.status_code == 429
    assert error.model == MODEL
    assert "Rate limit exceeded: free-models-per-min" in str(error)
    assert "openrouter" in str(error)
    assert MODEL in str(error)
    assert len(server.requests) == 3
    assert sleeps == [3.0, 3.0]


async def test_no_credits_is_reported_at_once_and_not_as_rate_limiting(
    sleeps: list[float],
) -> None:
    server = RecordedOpenRouter(json_reply("error_402.json", 402))

    with pytest.raises(InsufficientCreditsError) as caught:
        await server.provider().complete(MODEL, QUESTION, SamplingOptions())

    error = caught.value
    assert not isinstance(error, RateLimitedError)
    assert error.status_code == 402
    assert error.kind == "insufficient_credits"
    assert "requires more credits" in str(error)
    assert json.loads(error.body)["error"]["code"] == 402
    assert len(server.requests) == 1
    assert sleeps == []


async def test_server_error_is_retried_then_succeeds(sleeps: list[float]) -> None:
    server = RecordedOpenRouter(
        json_reply("error_500.json", 500),
        json_reply("chat_completion.json"),
    )

    completion = await server.provider().complete(MODEL, QUESTION, SamplingOptions())

    assert completion.usage.cost_usd == pytest.approx(0.0000069)
    assert len(server.requests) == 2
    assert len(sleeps) == 1
    assert 0 < sleeps[0] <= 0.5  # the SDK's first backoff step: 0.5 s less up to 25 % jitter


async def test_stream_skips_keep_alive_comments_and_ends_with_the_cost() -> None:
    server = RecordedOpenRouter(sse_reply("chat_stream.sse"))

    items = await collect(server.provider().stream(MODEL, QUESTION, SamplingOptions()))

    assert items[:-1] == [
        TextDelta(text="The capital"),
        TextDelta(text=" of France is"),
        TextDelta(text=" Paris."),
    ]
    final = items[-1]
    assert isinstance(final, Completion)
    assert final.text == "The capital of France is Paris."
    assert final.finish_reason == "stop"  # not the null of the usage chunk that follows it
    assert final.usage.completion_tokens == 8
    assert final.usage.cost_usd == pytest.approx(0.0000069)
    body = json.loads(server.requests[0].content)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["usage"] == {"include": True}


async def test_error_in_the_middle_of_a_stream_raises_after_the_partial_text() -> None:
    server = RecordedOpenRouter(sse_reply("chat_stream_midstream_error.sse"))
    received: list[TextDelta | Completion] = []

    with pytest.raises(ProviderError, match="Provider disconnected unexpectedly") as caught:
        await collect(server.provider().stream(MODEL, QUESTION, SamplingOptions()), received)

    assert received == [TextDelta(text="The capital")]
    assert caught.value.model == MODEL
    assert "openrouter" in str(caught.value)


async def test_html_from_a_proxy_with_status_200_raises_response_error() -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"
    server = RecordedOpenRouter(
        httpx2.Response(200, text=page, headers={"content-type": "text/html"})
    )

    with pytest.raises(ProviderResponseError, match="unusable answer") as caught:
        await server.provider().complete(MODEL, QUESTION, SamplingOptions())

    assert caught.value.model == MODEL


async def test_error_body_with_status_200_raises_instead_of_an_empty_answer() -> None:
    body = {"error": {"code": 502, "message": "Provider returned error"}, "user_id": "user_2"}
    server = RecordedOpenRouter(httpx2.Response(200, json=body))

    with pytest.raises(ProviderError, match="Provider returned error"):
        await server.provider().complete(MODEL, QUESTION, SamplingOptions())


async def test_timeout_raises_timeout_error_naming_the_model(sleeps: list[float]) -> None:
    server = RecordedOpenRouter(*(httpx2.ReadTimeout("read timed out") for _ in range(3)))

    with pytest.raises(ProviderTimeoutError) as caught:
        await server.provider(timeout_s=5.0).complete(MODEL, QUESTION, SamplingOptions())

    assert MODEL in str(caught.value)
    assert "openrouter" in str(caught.value)
    assert len(server.requests) == 3


async def test_each_request_carries_the_timeout_asked_for() -> None:
    server = RecordedOpenRouter(json_reply("chat_completion.json"))

    await server.provider(timeout_s=5.0).complete(MODEL, QUESTION, SamplingOptions())

    assert server.requests[0].extensions["timeout"]["read"] == 5.0


CALLS_THAT_NEED_A_KEY: dict[str, Callable[[OpenRouterProvider], Awaitable[object]]] = {
    "complete": lambda provider: provider.complete(MODEL, QUESTION, SamplingOptions()),
    "stream": lambda provider: collect(provider.stream(MODEL, QUESTION, SamplingOptions())),
    "credits": lambda provider: provider.credits(),
    "key_info": lambda provider: provider.key_info(),
}


@pytest.mark.parametrize(
    "call", CALLS_THAT_NEED_A_KEY.values(), ids=list(CALLS_THAT_NEED_A_KEY.keys())
)
async def test_missing_key_names_the_variable_to_set(
    call: Callable[[OpenRouterProvider], Awaitable[object]],
) -> None:
    server = RecordedOpenRouter()
    provider = server.provider(api_key=None)

    with pytest.raises(MissingCredentialsError, match="OPENROUTER_API_KEY"):
        await call(provider)

    assert server.requests == []
