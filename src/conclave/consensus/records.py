"""Turning one model call's outcome into its transcript record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from conclave.consensus.transcript import CallError, CallRecord, CallRole
from conclave.errors import ProviderError, ProviderHTTPError, ProviderTimeoutError
from conclave.types import Completion, Message


@asynccontextmanager
async def deadline(timeout_s: float, label: str) -> AsyncIterator[None]:
    """Bound a call in time; overrunning raises ProviderTimeoutError naming the model."""
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except TimeoutError:
        raise ProviderTimeoutError(
            f"{label}: no answer within {timeout_s:g} s", model=label
        ) from None


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
    )


def failed_record(
    label: str,
    role: CallRole,
    messages: Sequence[Message],
    exc: ProviderError,
    started: float,
) -> CallRecord:
    """The record of a call that raised."""
    status = exc.status_code if isinstance(exc, ProviderHTTPError) else None
    return CallRecord(
        model=label,
        role=role,
        messages=tuple(messages),
        error=CallError(type=exc.kind, message=str(exc), status_code=status),
        finish_reason="error",
        latency_s=time.perf_counter() - started,
    )
