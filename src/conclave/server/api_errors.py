"""The HTTP face of failures: every error the service answers, as OpenAI-shaped JSON with the
right status. (conclave's own exception hierarchy is `conclave.errors`; the routes translate
those into these.)

```
ApiError                  status, type, code, param; raised by routes and middleware
├── 400 invalid_json, invalid_value, prompt_too_long, too_many_messages, unsupported_parameter
├── 401 invalid_api_key
├── 403 unauthenticated_access_refused (no keys configured, a caller beyond this machine)
├── 404 model_not_found, not_found
├── 405 method_not_allowed (with Allow)
├── 408 request_timeout (the body did not arrive in time; the connection is closed)
├── 413 request_too_large
├── 429 too_many_concurrent_runs, rate_limit_exceeded (with Retry-After)
├── 502 quorum_not_reached, aggregator_failed (with the members' failures)
└── 503 provider_not_ready (a key or an embedded model missing)
```
Every mistake of the caller is a 400 of type `invalid_request_error`, as OpenAI answers it
(never FastAPI's 422), so OpenAI's clients raise their usual BadRequestError.
Messages are meant for the caller; they never hold a stack trace, and the app passes every
one through its redactor so that no configured key can leak into a response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic_core import ErrorDetails

from conclave.consensus.transcript import CallRecord, Transcript
from conclave.errors import ConsensusError
from conclave.server.schemas import ErrorBody, ErrorDetail, MemberFailure
from conclave.server.validation_messages import describe_problems

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "The body is not JSON, a field is invalid or over a limit (`param` names it), "
        "or the conversation has no usable prompt",
        401: "A missing or wrong API key",
        403: "The server has no API keys and the caller is not on its machine",
        404: "No preset of that name",
        413: "The body is larger than the limit",
        429: "The cap on concurrent runs, or the key's rate limit, is reached; see Retry-After",
        502: "Too few members answered, or the aggregator failed; `failures` lists why",
        503: "A provider is not ready (a key or an embedded model is missing)",
    }.items()
}
"""The error statuses, for the OpenAPI documentation of each route."""


class ApiError(Exception):
    """An error response: raise it anywhere below the app and the client gets its JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        transcript_id: str | None = None,
        failures: Sequence[MemberFailure] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})
        self.transcript_id = transcript_id
        self.failures = tuple(failures) if failures is not None else None

    def body(self, *, flare: bool = False) -> ErrorBody:
        return ErrorBody(
            error=ErrorDetail(
                message=self.message, type=self.type, param=self.param, code=self.code
            ),
            transcript_id=self.transcript_id,
            failures=self.failures,
            detail=self.message if flare else None,
        )


def unauthorized() -> ApiError:
    return ApiError(
        401,
        "a valid API key is required: send it as `Authorization: Bearer <key>`",
        code="invalid_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def local_callers_only() -> ApiError:
    """403 for a caller beyond this machine when the server has no API keys."""
    return ApiError(
        403,
        "this server has no API keys, so it answers only callers on its own machine; its "
        "operator can set CONCLAVE_API_KEYS and give you one (sent as `Authorization: Bearer "
        "<key>`), or start it with --allow-unauthenticated to serve anyone who reaches it",
        type="permission_error",
        code="unauthenticated_access_refused",
    )


def unknown_model(model: str, known: Sequence[str]) -> ApiError:
    return ApiError(
        404,
        f"the model {_shortened(model)!r} does not exist here; the consensus presets are: "
        + ", ".join(known),
        code="model_not_found",
        param="model",
    )


def _shortened(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def not_found(what: str) -> ApiError:
    return ApiError(404, what, code="not_found")


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"the request body is larger than {limit} bytes",
        code="request_too_large",
        headers=_CLOSE,
    )


def body_timed_out(timeout_s: float, received: int, declared: str | None) -> ApiError:
    """408 for a body that did not arrive whole in time (the connection is closed)."""
    expected = f" of the {declared} its Content-Length declares" if declared else ""
    return ApiError(
        408,
        f"the request body did not arrive within {timeout_s:g} s: {received} bytes came"
        f"{expected}; send the whole body at once",
        code="request_timeout",
        headers=_CLOSE,
    )


_CLOSE = {"Connection": "close"}
"""After an answer sent before the body was read to its end, the connection cannot carry
another request."""


def prompt_too_long(param: str, chars: int, limit: int) -> ApiError:
    return ApiError(
        400,
        f"{param}: the prompt has {chars} characters, more than the {limit} allowed",
        code="prompt_too_long",
        param=param,
    )


def too_many_messages(count: int, limit: int) -> ApiError:
    return ApiError(
        400,
        f"messages: {count} messages, more than the {limit} allowed",
        code="too_many_messages",
        param="messages",
    )


def server_busy(capacity: int, retry_after_s: int) -> ApiError:
    return _too_many(
        f"the server is running its maximum of {capacity} consensus runs; retry shortly",
        "too_many_concurrent_runs",
        retry_after_s,
    )


def rate_limited(retry_after_s: int) -> ApiError:
    """429 for a key that sent more requests than its rate allows."""
    return _too_many(
        f"this API key's request rate limit is reached; retry after {retry_after_s} s",
        "rate_limit_exceeded",
        retry_after_s,
    )


def _too_many(message: str, code: str, retry_after_s: int) -> ApiError:
    return ApiError(
        429,
        message,
        type="rate_limit_error",
        code=code,
        headers={"Retry-After": str(retry_after_s)},
    )


def unsupported_parameter(param: str, message: str) -> ApiError:
    """400 for an OpenAI parameter conclave does not honour, rather than silently ignoring it."""
    return ApiError(400, f"{param}: {message}", code="unsupported_parameter", param=param)


def method_not_allowed(method: str, path: str, allow: str) -> ApiError:
    return ApiError(
        405,
        f"{method} is not allowed on {path}; use {allow}",
        code="method_not_allowed",
        headers={"Allow": allow},
    )


def internal_error(error_id: str) -> ApiError:
    """500 for a bug: the client gets only an id to quote; the log has the rest."""
    return ApiError(
        500,
        f"internal server error (id {error_id}); the server log has the details",
        type="server_error",
        code="internal_error",
    )


def provider_not_ready(message: str) -> ApiError:
    return ApiError(503, message, type="server_error", code="provider_not_ready")


def consensus_failed(exc: ConsensusError) -> ApiError:
    """502: the upstream models failed; the body names every failure of the run. When asking
    again now would fail the same way (every member resting), `x-should-retry: false` tells
    OpenAI's clients not to retry (they otherwise retry a 502 by themselves)."""
    transcript = exc.transcript
    quorum = transcript is not None and transcript.stop_reason == "quorum_lost"
    return ApiError(
        502,
        str(exc),
        type="server_error",
        code="quorum_not_reached" if quorum else "aggregator_failed",
        headers=None if exc.retryable else {"x-should-retry": "false"},
        transcript_id=transcript.id if transcript else None,
        failures=failures_of(transcript) if transcript else (),
    )


def aggregate_broken_off(failed: CallRecord, transcript: Transcript) -> ApiError:
    """502 ending a stream whose aggregator failed after part of its text was sent: the text
    the client holds is not the answer; the consensus a fallback wrote is in the transcript."""
    reason = f": {failed.error.type}: {failed.error.message}" if failed.error else ""
    decided_by = transcript.rounds[-1].decided_by.replace("_", " ") if transcript.rounds else ""
    return ApiError(
        502,
        f"the aggregator {failed.model} failed after part of its answer was streamed{reason}. "
        f"The text received is not the answer: the {decided_by} wrote the consensus, read it "
        f"at /v1/transcripts/{transcript.id} or ask again",
        type="server_error",
        code="aggregator_failed",
        transcript_id=transcript.id,
        failures=failures_of(transcript),
    )


def failures_of(transcript: Transcript) -> tuple[MemberFailure, ...]:
    """Every failed call of a run (members and aggregator), in order."""
    return tuple(
        failure_of(index, call) for index, call in transcript.calls() if call.error is not None
    )


def failure_of(round_index: int, call: CallRecord) -> MemberFailure:
    """A failed call, as error bodies and summaries list it."""
    assert call.error is not None
    return MemberFailure(
        model=call.model, round=round_index, type=call.error.type, message=call.error.message
    )


def invalid_request(errors: Sequence[ErrorDetails]) -> ApiError:
    """400 for a request that is JSON (or a query) but not a valid one: every problem in the
    caller's words, the first one's param and code."""
    problems = describe_problems(errors)
    if not problems:
        return ApiError(400, "the request is not valid", code="invalid_value")
    first = problems[0]
    return ApiError(
        400,
        " ".join(problem.message for problem in problems),
        code=first.code,
        param=first.param,
    )
