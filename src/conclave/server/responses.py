"""JSON responses from typed models, and error bodies with every secret redacted."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import BaseModel
from starlette.responses import Response

from conclave.server.api_errors import ApiError
from conclave.server.schemas import ErrorBody

TRANSCRIPT_HEADER = "X-Conclave-Transcript-Id"


def json_response(
    model: BaseModel, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Serialise a response model once, without FastAPI validating it again."""
    return Response(
        model.model_dump_json(),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def error_body(exc: ApiError, redact: Callable[[str], str], *, flare: bool = False) -> ErrorBody:
    """The error's body with its message and the failures' messages redacted."""
    body = exc.body(flare=flare)
    error = body.error.model_copy(update={"message": redact(body.error.message)})
    failures = (
        tuple(f.model_copy(update={"message": redact(f.message)}) for f in body.failures)
        if body.failures is not None
        else None
    )
    detail = redact(body.detail) if body.detail is not None else None
    return body.model_copy(update={"error": error, "failures": failures, "detail": detail})


def error_json(exc: ApiError, redact: Callable[[str], str], *, flare: bool = False) -> str:
    """OpenAI's `{"error": {"message", "type", "param", "code"}}` (param and code may be
    null), plus conclave's optional fields when they have a value."""
    body = error_body(exc, redact, flare=flare)
    unset = {name for name in _OPTIONAL_FIELDS if getattr(body, name) is None}
    return body.model_dump_json(exclude=unset)


_OPTIONAL_FIELDS = ("transcript_id", "failures", "detail")


def error_response(exc: ApiError, redact: Callable[[str], str], *, flare: bool = False) -> Response:
    headers = dict(exc.headers)
    if exc.transcript_id:
        headers[TRANSCRIPT_HEADER] = exc.transcript_id
    return Response(
        error_json(exc, redact, flare=flare),
        status_code=exc.status,
        media_type="application/json",
        headers=headers,
    )
