"""When to retry a failed model call, kept inside the call's deadline.

The policy is the openai SDK's (read in its source, openai 3.54): up to `max_retries`
retries of 408/409/429/5xx answers and failed connections, waiting 0.5 s doubling to at most
8 s with up to 25% jitter, or what the server's `Retry-After` asks for. The SDK cannot know
how long its caller will wait: asked to wait 30 s with 5 s left, it sleeps and the call ends
in a timeout that hides the rate limit. So the providers run the SDK without retries and
retry here: a wait that would end past the deadline of the call (`call_deadline`) is not
waited, and the last failure is reported at once.

One departure from the SDK: a call that failed fast (an HTTP 5xx or a refused connection
within `FAST_FAILURE_S`, not a rate limit) backs off one step less: its first retry is made at
once, its second after 0.5 s, and so on. Such a failure is one bad request (a gateway's broken
backend, a dropped pooled connection), not a sign of load; backing off 0.5 s would make the
retried member a straggler its round leaves behind, and a retried aggregator costs every client
of the round that half second. A slow failure backs off as the SDK does, and a `Retry-After` is
always honoured.

A caller may watch a call's retries (`CallBounds` with a `RetryWatch`): see whether one was
made, and forbid any that would start after a given time. A round uses this so that a failing
member's retries never hold it beyond its grace (see `conclave.consensus.engine`).
"""

from __future__ import annotations

import random
import time
from contextvars import ContextVar, Token
from dataclasses import dataclass

_DEADLINE: ContextVar[float | None] = ContextVar("conclave_call_deadline", default=None)
"""`time.monotonic()` by which the model call being made must have ended."""


@dataclass
class RetryWatch:
    """A caller's view of one call's retries: `retrying` once a retry was decided on; no retry
    whose wait would end after `no_retry_after` (a `time.monotonic()`, None: any) is made."""

    retrying: bool = False
    no_retry_after: float | None = None


_WATCH: ContextVar[RetryWatch | None] = ContextVar("conclave_retry_watch", default=None)

MIN_ATTEMPT_S = 0.05
"""A retry that would have less time than this left after its wait is not started."""

FAST_FAILURE_S = 0.25
"""A failed attempt that ended sooner than this failed fast: its backoff is one step shorter."""

AT_ONCE_S = 0.02
"""The wait before a retry made at once (less up to 25% jitter), so that a burst of failures
is not retried in lockstep."""


class CallBounds:
    """Declare that the model calls made inside must end within `timeout_s`: retries that
    would start after that are not made. A nested, earlier deadline wins. With a `watch`, it
    also sees and bounds the retries of those calls.

    A plain class rather than a generator-based context manager: it is entered around every
    model call."""

    __slots__ = ("_deadline_token", "_timeout_s", "_watch", "_watch_token")

    def __init__(self, timeout_s: float, watch: RetryWatch | None = None) -> None:
        self._timeout_s = timeout_s
        self._watch = watch
        self._deadline_token: Token[float | None] | None = None
        self._watch_token: Token[RetryWatch | None] | None = None

    def __enter__(self) -> None:
        due = time.monotonic() + self._timeout_s
        outer = _DEADLINE.get()
        self._deadline_token = _DEADLINE.set(due if outer is None else min(due, outer))
        if self._watch is not None:
            self._watch_token = _WATCH.set(self._watch)

    def __exit__(self, *exc_info: object) -> None:
        if self._watch_token is not None:
            _WATCH.reset(self._watch_token)
            self._watch_token = None
        if self._deadline_token is not None:
            _DEADLINE.reset(self._deadline_token)
            self._deadline_token = None


def call_deadline(timeout_s: float) -> CallBounds:
    """Declare that the model calls made inside must end within `timeout_s` (see
    `CallBounds`)."""
    return CallBounds(timeout_s)


def time_left_s() -> float | None:
    """Seconds left before the current call's deadline; None outside any `call_deadline`."""
    due = _DEADLINE.get()
    return None if due is None else due - time.monotonic()


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and after how long, a failed call is tried again."""

    max_retries: int = 2
    initial_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 120.0
    """A server asking for a longer wait than this is not retried (the SDK's own limit)."""

    def wait_before_retry_s(
        self, retry: int, retry_after_s: float | None, *, failed_fast: bool = False
    ) -> float | None:
        """Seconds to wait before retry number `retry` (1 for the first), or None when it must
        not be made: the retries are spent, the server asks for too long a wait, or the wait
        would end too close to the call's deadline. `failed_fast`: the attempt that failed
        was a fast failure (see `failed_fast`), so the backoff is one step shorter (the
        first retry is made at once)."""
        if retry > self.max_retries:
            return None
        if retry_after_s is not None and retry_after_s > self.max_retry_after_s:
            return None
        if retry_after_s:  # an absent or zero Retry-After leaves the wait to the backoff
            wait = retry_after_s
        else:
            step = retry - 1 if failed_fast else retry
            backoff = AT_ONCE_S if step == 0 else self.initial_delay_s * 2.0 ** (step - 1)
            wait = min(backoff, self.max_delay_s) * (1 - 0.25 * random.random())
        left = time_left_s()
        if left is not None and wait + MIN_ATTEMPT_S > left:
            return None
        watch = _WATCH.get()
        if watch is not None:
            if watch.no_retry_after is not None and time.monotonic() + wait > watch.no_retry_after:
                return None
            watch.retrying = True
        return wait


def failed_fast(attempt_s: float, status_code: int | None) -> bool:
    """Whether a failed attempt that took `attempt_s` seconds, with this HTTP status (None: no
    response, a failed connection), failed fast: a server error or a refused connection that
    came back within `FAST_FAILURE_S`. A rate limit (429) never does: it asks for a wait."""
    if attempt_s >= FAST_FAILURE_S:
        return False
    return status_code is None or status_code >= 500
