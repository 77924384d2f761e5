"""Any OpenAI-compatible chat server, reached through the official `openai` SDK.

The SDK does the transport work: SSE framing (keep-alive comments skipped), timeouts, and an
`error` object inside a stream turned into an exception. This module adds what the SDK leaves to
its caller:

- a strict reading of every answer. Servers extend the wire format (OpenRouter's `usage.cost`,
  an `error` beside `choices`) and the SDK builds its response objects without validating them,
  so the raw JSON is validated here, once, into small typed wire models;
- one translation of every failure into conclave's errors (`_provider_error`), so nothing above
  the providers sees an `openai` or `httpx2` exception;
- retries with the SDK's policy, but never past the call's deadline (`conclave.providers.retries`);
- JSON answers for a call whose options carry a `json_schema`: sent as OpenAI's `response_format`
  `json_schema`; a server that refuses that form (an HTTP error naming `response_format`) is
  asked again at once in llama-cpp-python's form (`json_object` with a `schema`), then with no
  format at all, and the provider remembers per model which form the server took. Without a
  format the answer is checked by whoever asked for it (the swarm's planner repairs it).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Required, TypedDict, TypeVar

import anyio
import httpx2
import openai
import pydantic
from openai._base_client import get_platform
from openai._httpx2 import request_exceptions, timeout_exceptions
from openai._models import FinalRequestOptions
from openai._utils import asyncify
from pydantic import BaseModel, ConfigDict, JsonValue

from conclave.errors import (
    InsufficientCreditsError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeoutError,
    RateLimitedError,
)
from conclave.providers.base import Provider
from conclave.providers.retries import RetryPolicy, failed_fast
from conclave.types import (
    Completion,
    JsonSchema,
    Message,
    ModelInfo,
    Role,
    SamplingOptions,
    SamplingParams,
    StreamItem,
    TextDelta,
    Usage,
)

HttpTransport = Literal["aiohttp", "httpx"]

SchemaForm = Literal["json_schema", "json_object_schema", "none"]
"""How a JSON schema is sent: OpenAI's `response_format` `json_schema`; llama-cpp-python's
`json_object` with a `schema`; or not at all (the server takes neither)."""

SCHEMA_FORMS: tuple[SchemaForm, ...] = ("json_schema", "json_object_schema", "none")
"""The forms tried in turn until a server accepts one."""

_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")

DEFAULT_HTTP_TRANSPORT: HttpTransport = "aiohttp"
"""Chosen by measurement: `complete()` against a local keep-alive server with 20 ms latency, on
2 cores, cost about 1.4 ms of CPU per call with aiohttp against 5-8 ms with httpx2 (2000 calls,
200 at a time), and 1.7 ms against 10.7 ms with 2400 at a time, where httpx2 also fell to a
sixth of the throughput."""

DEFAULT_MAX_CONNECTIONS = 1000

_KEYLESS_PLACEHOLDER = "no-key"
"""Sent as the bearer token to a server configured without a key; the SDK refuses to start
without one, and an explicit value also keeps it from reading `OPENAI_API_KEY` from the
environment and sending that key to an unrelated server."""


def make_http_client(
    transport: HttpTransport = DEFAULT_HTTP_TRANSPORT,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> httpx2.AsyncClient:
    """The HTTP client a provider uses when none is given.

    `"aiohttp"` is the SDK's aiohttp transport behind the httpx2 interface; `"httpx"` is plain
    httpx2. Both keep up to `max_connections` connections open and reusable, so a panel of many
    concurrent calls does not queue behind a small pool. Timeouts are set per request by the SDK.
    """
    limits = httpx2.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    if transport == "aiohttp":
        return openai.DefaultAioHttpClient(limits=limits)
    return httpx2.AsyncClient(limits=limits, follow_redirects=True)


class OpenAICompatibleProvider(Provider):
    """Models behind any OpenAI-compatible URL (`/chat/completions`, `/models`).

    `api_key=None` is for servers that need no key (llama.cpp, vLLM, a local proxy). A failed
    call is retried up to `max_retries` times, never past its deadline (`call_deadline`);
    `timeout_s` bounds each attempt. Pass
    `http_client` to share a pool or to inject a transport (tests use `httpx2.MockTransport`);
    a client passed in is left open by `aclose()`.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        name: str = "openai",
        default_headers: Mapping[str, str] | None = None,
        max_retries: int = 2,
        timeout_s: float = 120.0,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url
        self._api_key = api_key
        self._owns_http_client = http_client is None
        self._retry_policy = RetryPolicy(max_retries=max_retries)
        self._schema_forms: dict[str, SchemaForm] = {}
        """Per model, the schema form its server accepted (or the next one to try)."""
        self._chat_template: _RequestTemplate | None = None
        """What every chat request takes from the SDK's own (see `_post_chat`)."""
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or _KEYLESS_PLACEHOLDER,
            default_headers=dict(default_headers or {}),
            max_retries=0,  # retried here, within the deadline (see conclave.providers.retries)
            timeout=timeout_s,
            http_client=http_client if http_client is not None else make_http_client(),
        )

    async def complete(
        self, model: str, messages: Sequence[Message], options: SamplingOptions
    ) -> Completion:
        """Answer with one completion; raises a `ProviderError` subclass on any failure."""
        self._require_key()
        started = time.perf_counter()
        with self._translated_errors(model):
            response = await self._in_a_schema_form(
                model,
                options,
                lambda form: self._with_retries(
                    lambda retry: self._post_chat(
                        _chat_request(model, messages, options, stream=False, form=form), retry
                    )
                ),
            )
            answer = _WireCompletion.model_validate_json(response.content)
        if answer.error is not None:
            raise _payload_error(answer.error, where=self._where(model), model=model)
        if not answer.choices:
            raise self._unusable(model, "the answer has no choices")
        choice = answer.choices[0]
        self._check_finish_reason(choice.finish_reason, model)
        if choice.message.content is None:
            raise self._unusable(model, "the answer's message has no content")
        return Completion(
            model=model,
            text=choice.message.content,
            finish_reason=choice.finish_reason,
            usage=_usage(answer.usage),
            latency_s=time.perf_counter() - started,
            token_probability=_token_probability(choice.logprobs),
        )

    async def stream(
        self, model: str, messages: Sequence[Message], options: SamplingOptions
    ) -> AsyncIterator[StreamItem]:
        """Yield `TextDelta` pieces as they arrive, then one `Completion` with the usage.

        A stream that reports an error, or ends before the model finished, raises instead of
        ending with a partial answer.
        """
        self._require_key()
        started = time.perf_counter()
        pieces: list[str] = []
        finish_reason: str | None = None
        usage = Usage()
        with self._translated_errors(model):
            chunks = await self._in_a_schema_form(
                model,
                options,
                lambda form: self._with_retries(
                    lambda retry: self._client.post(
                        "/chat/completions",
                        cast_to=object,
                        body=_chat_request(model, messages, options, stream=True, form=form),
                        options=self._chat_request_options(retry),
                        stream=True,
                        stream_cls=openai.AsyncStream[object],
                    )
                ),
            )
            try:
                async for raw_chunk in chunks:
                    chunk = _WireChunk.model_validate(raw_chunk)
                    if chunk.error is not None:
                        raise _payload_error(chunk.error, where=self._where(model), model=model)
                    if chunk.usage is not None:
                        usage = _usage(chunk.usage)
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    self._check_finish_reason(choice.finish_reason, model)
                    # OpenRouter's last chunk (the one carrying usage) has a null finish_reason.
                    finish_reason = choice.finish_reason or finish_reason
                    if choice.delta.content:
                        pieces.append(choice.delta.content)
                        yield TextDelta(text=choice.delta.content)
            finally:
                await chunks.close()
        if finish_reason is None:
            raise self._unusable(model, "the stream ended before the model finished")
        yield Completion(
            model=model,
            text="".join(pieces),
            finish_reason=finish_reason,
            usage=usage,
            latency_s=time.perf_counter() - started,
        )

    async def list_models(self) -> list[ModelInfo]:
        """The models the server lists at `GET /models`."""
        listing = await self._get("/models", _WireModelList)
        return [ModelInfo(id=entry.id, name=entry.id, provider=self.name) for entry in listing.data]

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it."""
        if self._owns_http_client:
            await self._client.close()

    # Hooks for providers built on this one.

    def _require_key(self) -> None:
        """Raise `MissingCredentialsError` if a call needs a key this provider lacks.

        Any OpenAI-compatible server may run without a key, so the base needs none."""

    def _chat_extra_body(self) -> Mapping[str, object]:
        """Fields a subclass adds to every chat request body."""
        return {}

    # Internals.

    async def _get(self, path: str, shape: type[_M]) -> _M:
        """GET a JSON document below the base URL and validate it as `shape`.

        Without a key no Authorization header is sent: these endpoints may be public, and a
        placeholder token could be rejected where no token at all is accepted."""
        headers: dict[str, str | openai.Omit] = (
            {} if self._api_key else {"Authorization": openai.omit}
        )
        with self._translated_errors(None):
            response = await self._with_retries(
                lambda retry: self._client.get(
                    path,
                    cast_to=httpx2.Response,
                    options={
                        "headers": {**headers, **_retry_count_header(retry)},
                        "security": {"bearer_auth": True},
                    },
                )
            )
            return shape.model_validate_json(response.content)

    async def _in_a_schema_form(
        self, model: str, options: SamplingOptions, send: Callable[[SchemaForm], Awaitable[_T]]
    ) -> _T:
        """`send(form)` in the schema form this model's server takes: the one it took before,
        else each of SCHEMA_FORMS in turn while the server refuses the form (and only the
        form: any other failure is raised as it came)."""
        if options.json_schema is None:
            return await send("none")
        form = self._schema_forms.get(model, SCHEMA_FORMS[0])
        while True:
            try:
                answer = await send(form)
            except openai.APIStatusError as exc:
                if form == "none" or not _refuses_response_format(exc):
                    raise
                form = SCHEMA_FORMS[SCHEMA_FORMS.index(form) + 1]
                self._schema_forms[model] = form
                continue
            self._schema_forms[model] = form
            return answer

    async def _with_retries(self, send: Callable[[int], Awaitable[_T]]) -> _T:
        """`send(retry)` (0 on the first try), tried again after a retryable failure while the
        policy and the call's deadline allow; the last failure is raised as the SDK raised it."""
        retry = 0
        while True:
            started = time.monotonic()
            try:
                return await send(retry)
            except (openai.APIStatusError, openai.APIConnectionError) as exc:
                retry += 1
                attempt_s = time.monotonic() - started
                wait_s = _wait_before_retry_s(exc, self._retry_policy, retry, attempt_s)
                if wait_s is None:
                    raise
                await anyio.sleep(wait_s)

    async def _post_chat(self, body: _ChatRequest, retry: int) -> httpx2.Response:
        """POST a chat request (not streamed) as the SDK's `post` would, and the same on the
        wire: its URL, headers (key, SDK and default headers, `x-stainless-*`), timeout and
        JSON, its send (with the SDK's auth handling), the same exceptions for a failed
        connection, a timeout and an HTTP error. Only the building is not done anew for every
        call: the SDK's own request for this provider is built once (`_chat_template`) and each
        call takes its URL, headers and timeout with a body and retry count of its own. Measured
        on the throughput benchmark, building each request in the SDK was about a fifth of the
        server's CPU."""
        template = self._chat_template or await self._build_chat_template()
        content = _CHAT_JSON.encode({**body, **self._chat_extra_body()}).encode()
        headers = template.headers.copy()
        headers[_RETRY_COUNT_HEADER] = str(retry)
        headers["Content-Length"] = str(len(content))
        # A stream, not `content=`: the headers are whole already, httpx2 has nothing to add.
        request = httpx2.Request(
            "POST",
            template.url,
            headers=headers,
            stream=httpx2.ByteStream(content),
            extensions=template.extensions,
        )
        request.read()
        client = self._client
        await client._prepare_request(request)
        try:
            response = await client._send_request(request, stream=False)
        except timeout_exceptions() as exc:
            raise openai.APITimeoutError(request=request) from exc
        except openai.OpenAIError:
            raise
        except request_exceptions() as exc:
            raise openai.APIConnectionError(request=request) from exc
        if not response.is_success:
            raise client._make_status_error_from_response(response) from None
        return response

    async def _build_chat_template(self) -> _RequestTemplate:
        """The SDK's chat request for this provider, built by the SDK itself, as what every
        chat request takes its URL, headers and timeout from (see `_post_chat`)."""
        client = self._client
        if client._platform is None:
            # As the SDK does before its first request: reading the platform may block.
            client._platform = await asyncify(get_platform)()
        options = await client._prepare_options(
            FinalRequestOptions.construct(
                method="post",
                url="/chat/completions",
                json_data={},
                **self._chat_request_options(0),
            )
        )
        built = client._build_request(options)
        self._chat_template = _RequestTemplate(built.url, built.headers, dict(built.extensions))
        return self._chat_template

    def _chat_request_options(self, retry: int) -> openai.RequestOptions:
        return {
            "security": {"bearer_auth": True},
            "extra_json": self._chat_extra_body(),
            "headers": _retry_count_header(retry),
        }

    @contextlib.contextmanager
    def _translated_errors(self, model: str | None) -> Iterator[None]:
        try:
            yield
        except (openai.OpenAIError, pydantic.ValidationError, json.JSONDecodeError) as exc:
            raise _provider_error(exc, where=self._where(model), model=model) from exc

    def _check_finish_reason(self, finish_reason: str | None, model: str) -> None:
        if finish_reason == "error":
            raise ProviderError(
                f"{self._where(model)}: the model stopped with an error", model=model
            )

    def _unusable(self, model: str, detail: str) -> ProviderResponseError:
        return ProviderResponseError(
            f"{self._where(model)}: unusable answer: {detail}", model=model
        )

    def _where(self, model: str | None) -> str:
        if model is None:
            return f"{self.name} ({self.base_url})"
        return f"{self.name} model {model!r}"


def _provider_error(exc: Exception, *, where: str, model: str | None) -> ProviderError:
    """The one translation of an SDK, HTTP or parsing failure into conclave's errors."""
    if isinstance(exc, openai.APITimeoutError) and not _refused_connection(exc):
        return ProviderTimeoutError(f"{where}: timed out waiting for the server", model=model)
    if isinstance(exc, openai.APIConnectionError):
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        return ProviderConnectionError(
            f"{where}: could not reach {exc.request.url}{cause}", model=model
        )
    if isinstance(exc, openai.APIStatusError):
        return _status_error(
            exc.status_code,
            _error_message(exc.body) or exc.message,
            where=where,
            model=model,
            body=_body_text(exc.response),
            retry_after_s=_retry_after_s(exc.response.headers),
        )
    if isinstance(exc, openai.APIError):
        # Raised by the SDK for an `error` object inside a 200 stream (OpenRouter, vLLM).
        try:
            payload = _WireError.model_validate(exc.body)
        except pydantic.ValidationError:
            payload = _WireError(message=exc.message)
        return _payload_error(payload, where=where, model=model)
    if isinstance(exc, pydantic.ValidationError | json.JSONDecodeError):
        detail = _first_line(str(exc))
        return ProviderResponseError(f"{where}: unusable answer: {detail}", model=model)
    return ProviderError(f"{where}: {exc}", model=model)


_RETRY_COUNT_HEADER = "x-stainless-retry-count"

_CHAT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
"""A chat body as the SDK encodes it (`openai._utils._json.openapi_dumps`, whose encoder
differs only for types a chat body never holds), one encoder for every call."""


def _retry_count_header(retry: int) -> dict[str, str]:
    """The header the SDK sends with its own retries, kept now that the retries are ours."""
    return {_RETRY_COUNT_HEADER: str(retry)}


@dataclass(frozen=True)
class _RequestTemplate:
    """What the chat requests of one provider share: the SDK's URL, headers (each call sets
    its own `Content-Length` and retry count in a copy) and timeout."""

    url: httpx2.URL
    headers: httpx2.Headers
    extensions: dict[str, Any]


def _wait_before_retry_s(
    exc: openai.APIStatusError | openai.APIConnectionError,
    policy: RetryPolicy,
    retry: int,
    attempt_s: float,
) -> float | None:
    """As the SDK decides: failed connections and 408/409/429/5xx are retried, unless the
    server says `x-should-retry: false` (or asks for it with `true`); an attempt that failed
    fast (`attempt_s`, see `retries.failed_fast`) backs off one step less (at once, first)."""
    if isinstance(exc, openai.APIConnectionError):
        return policy.wait_before_retry_s(retry, None, failed_fast=failed_fast(attempt_s, None))
    if _refuses_response_format(exc):
        return None
    headers = exc.response.headers
    should_retry = headers.get("x-should-retry")
    status = exc.status_code
    if should_retry == "false":
        return None
    if should_retry != "true" and status not in (408, 409, 429) and status < 500:
        return None
    fast = failed_fast(attempt_s, status)
    return policy.wait_before_retry_s(retry, _retry_after_s(headers), failed_fast=fast)


def _refuses_response_format(exc: openai.APIStatusError) -> bool:
    """Whether a server turned a request down for its `response_format`: OpenAI says so in a
    400, a pydantic-validated server in a 422, and llama-cpp-python's server in a 500 that
    names the field. Asking again in the same form would be refused again."""
    if exc.status_code not in (400, 422, 500):
        return False
    said = f"{exc.message} {_body_text(exc.response)} {json.dumps(exc.body, default=str)}"
    return "response_format" in said


def _refused_connection(exc: BaseException) -> bool:
    """True when a reported timeout was a refused or unresolvable connection: the SDK's aiohttp
    transport maps every failure to connect, timed out or not, to a connect timeout."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, OSError) and not isinstance(cause, TimeoutError):
            return True
        cause = cause.__cause__
    return False


def _payload_error(error: _WireError, *, where: str, model: str | None) -> ProviderError:
    """An `error` object sent inside a 200 answer or stream, where the status could no longer
    change; OpenRouter gives it the HTTP status the failure would have had as its `code`."""
    message = error.message or "the server reported an error"
    if isinstance(error.code, int):
        return _status_error(
            error.code, f"{message} (sent inside a 200 answer)", where=where, model=model
        )
    code = f" ({error.code})" if error.code else ""
    return ProviderError(f"{where}: error during the answer{code}: {message}", model=model)


def _status_error(
    status: int,
    message: str,
    *,
    where: str,
    model: str | None,
    body: str = "",
    retry_after_s: float | None = None,
) -> ProviderHTTPError:
    if status == 429:
        wait = f"; retry after {retry_after_s:g}s" if retry_after_s is not None else ""
        return RateLimitedError(
            f"{where}: rate limited (HTTP 429): {message}{wait}",
            retry_after_s=retry_after_s,
            body=body,
            model=model,
        )
    if status == 402:
        return InsufficientCreditsError(
            f"{where}: insufficient credits (HTTP 402): {message}", body=body, model=model
        )
    return ProviderHTTPError(
        f"{where}: HTTP {status}: {message}", status_code=status, body=body, model=model
    )


def _retry_after_s(headers: httpx2.Headers) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        with contextlib.suppress(ValueError):
            return max(0.0, float(milliseconds) / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_message(body: object) -> str | None:
    """The `message` of an error body (`{"error": {...}}` or the inner object the SDK keeps)."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            message = inner.get("message")
            if isinstance(message, str) and message:
                return message
        elif isinstance(inner, str) and inner:
            return inner
    elif isinstance(body, str) and body.strip():
        return _first_line(body.strip())
    return None


def _body_text(response: httpx2.Response) -> str:
    try:
        return response.text
    except httpx2.ResponseNotRead:
        return ""


def _first_line(text: str, limit: int = 300) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _usage(usage: _WireUsage | None) -> Usage:
    if usage is None:
        return Usage()
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost_usd=usage.cost,
    )


class _ChatMessage(TypedDict):
    role: Role
    content: str


class _StreamOptions(TypedDict):
    include_usage: bool


class _JsonSchemaSpec(TypedDict):
    name: str
    schema: dict[str, JsonValue]
    strict: bool


class _JsonSchemaFormat(TypedDict):
    """OpenAI's structured output."""

    type: Literal["json_schema"]
    json_schema: _JsonSchemaSpec


class _JsonObjectSchemaFormat(TypedDict):
    """llama-cpp-python's server: a JSON object under the grammar of `schema`."""

    type: Literal["json_object"]
    schema: dict[str, JsonValue]


class _ResponseFormatField(TypedDict, total=False):
    response_format: _JsonSchemaFormat | _JsonObjectSchemaFormat


class _ChatRequest(SamplingParams, _ResponseFormatField, total=False):
    model: Required[str]
    messages: Required[list[_ChatMessage]]


class _StreamingChatRequest(_ChatRequest):
    stream: bool
    stream_options: _StreamOptions


def _chat_request(
    model: str,
    messages: Sequence[Message],
    options: SamplingOptions,
    *,
    stream: bool,
    form: SchemaForm = "none",
) -> _ChatRequest | _StreamingChatRequest:
    request: _ChatRequest = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        **options.params(),
        **_response_format(options.json_schema, form),
    }
    if not stream:
        return request
    return {**request, "stream": True, "stream_options": {"include_usage": True}}


def _response_format(schema: JsonSchema | None, form: SchemaForm) -> _ResponseFormatField:
    """The request's `response_format` for `schema` in `form` (none without a schema)."""
    if schema is None or form == "none":
        return {}
    if form == "json_schema":
        spec: _JsonSchemaSpec = {"name": schema.name, "schema": schema.value(), "strict": True}
        return {"response_format": {"type": "json_schema", "json_schema": spec}}
    return {"response_format": {"type": "json_object", "schema": schema.value()}}


class _Wire(BaseModel):
    """What conclave reads of a server's JSON; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")


class _WireError(_Wire):
    code: int | str | None = None
    message: str = ""


class _WireUsage(_Wire):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None


class _WireMessage(_Wire):
    content: str | None = None


class _WireTokenLogprob(_Wire):
    logprob: float


class _WireLogprobs(_Wire):
    content: tuple[_WireTokenLogprob, ...] | None = None


class _WireChoice(_Wire):
    message: _WireMessage
    finish_reason: str | None = None
    logprobs: _WireLogprobs | None = None


def _token_probability(logprobs: _WireLogprobs | None) -> float | None:
    """The geometric mean of the answer's token probabilities, when the server sent them."""
    if logprobs is None or not logprobs.content:
        return None
    return math.exp(sum(token.logprob for token in logprobs.content) / len(logprobs.content))


class _WireCompletion(_Wire):
    choices: tuple[_WireChoice, ...] = ()
    usage: _WireUsage | None = None
    error: _WireError | None = None


class _WireDelta(_Wire):
    content: str | None = None


class _WireChunkChoice(_Wire):
    delta: _WireDelta = _WireDelta()
    finish_reason: str | None = None


class _WireChunk(_Wire):
    choices: tuple[_WireChunkChoice, ...] = ()
    usage: _WireUsage | None = None
    error: _WireError | None = None


class _WireModelEntry(_Wire):
    id: str


class _WireModelList(_Wire):
    data: tuple[_WireModelEntry, ...]
