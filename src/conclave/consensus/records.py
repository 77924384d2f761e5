"""Turning one model call's outcome into its transcript record (the calls themselves are
made by `conclave.consensus.calls`)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from conclave.consensus.transcript import CallError, CallRecord, CallRole
from conclave.errors import ConclaveError, ProviderError, ProviderHTTPError
from conclave.types import Completion, Message


def call_record(
    label: str,
    role: CallRole,
    messages: Sequence[Message],
    completion: Completion,
    latency_s: float,
) -> CallRecord:
    """The record of an answered call; an empty answer counts as a failure."""
    error = None
    if not completion.text.strip():
        error = CallError(type="empty_answer", message=f"{label} answered with no text")
    return CallRecord(
        model=label,
        role=role,
        messages=tuple(messages),
        text=completion.text,
        error=error,
        finish_reason=completion.finish_reason,
        truncated=completion.truncated,
        usage=completion.usage,
        latency_s=latency_s,
        token_probability=completion.token_probability,
        choice_probabilities=completion.choice_probabilities,
    )


def as_provider_error(exc: Exception, label: str) -> ProviderError:
    """Any exception of a model call as that call's failure: a missing model pack, an unknown
    embedded model or a bug in a provider fails the call, never the whole run."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ConclaveError):
        return ProviderError(f"{label}: {exc}", model=label)
    return ProviderError(f"{label}: {type(exc).__name__}: {exc}", model=label)


def failed_record(
    label: str,
    role: CallRole,
    messages: Sequence[Message],
    exc: Exception,
    started: float,
) -> CallRecord:
    """The record of a call that raised (whatever it raised)."""
    exc = as_provider_error(exc, label)
    status = exc.status_code if isinstance(exc, ProviderHTTPError) else None
    return CallRecord(
        model=label,
        role=role,
        messages=tuple(messages),
        error=CallError(type=exc.kind, message=str(exc), status_code=status),
        finish_reason="error",
        latency_s=time.perf_counter() - started,
    )


def worth_asking_again(record: CallRecord) -> bool:
    """Whether a failed call may well answer if made again at once: the server failed (HTTP
    5xx) or the connection did. Not a timeout (it used its whole time), a rate limit (it asked
    for a wait), a bad request or key, nor a member skipped or left behind."""
    error = record.error
    if error is None:
        return False
    if error.type == "connection_error":
        return True
    return error.type == "http_error" and (error.status_code or 0) >= 500
