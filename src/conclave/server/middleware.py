"""The app's ASGI middleware, outermost first:

- `ErrorGuard`: an exception that escapes a route becomes a 500 with an error id; the log gets
  one line (type and redacted message), never a traceback, never a key;
- `RequestMetrics`: counts requests and their latency by route template;
- `AccessGate`: 401 without a valid bearer key when keys are configured; with none, 403 for
  callers beyond this machine unless unauthenticated access is allowed (`/health`, the page,
  the API docs and CORS preflights stay open); marks each request trusted or not;
- `KeyRateLimit`: 429 with Retry-After for a key (or client address) over its request rate;
- `BodyIntake`: reads the whole body before the app: 413 over the size limit (by
  Content-Length, or as it streams in), 408 when it has not all arrived in time.

All are plain ASGI (no BaseHTTPMiddleware), so a streamed response passes through untouched.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conclave.server.api_errors import (
    body_timed_out,
    internal_error,
    local_callers_only,
    rate_limited,
    too_large,
    unauthorized,
)
from conclave.server.metrics import ServiceMetrics
from conclave.server.responses import error_response
from conclave.server.security import KeyChecker, bearer_token, is_loopback

log = logging.getLogger("conclave.server")

Redact = Callable[[str], str]


class ErrorGuard:
    def __init__(self, app: ASGIApp, redact: Redact) -> None:
        self.app = app
        self.redact = redact

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            error_id = uuid.uuid4().hex[:12]
            log.error(
                "internal error %s on %s %s: %s: %s",
                error_id,
                scope.get("method", ""),
                scope.get("path", ""),
                type(exc).__name__,
                self.redact(str(exc)),
            )
            if not started:
                await error_response(internal_error(error_id), self.redact)(scope, receive, send)


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            metrics = self.metrics
            metrics.labelled(metrics.requests, method, template, str(status)).inc()
            elapsed = time.perf_counter() - started
            metrics.labelled(metrics.request_seconds, method, template).observe(elapsed)


TRUSTED = "conclave_trusted"
"""Set in each request's state by AccessGate: whether the caller may see more than what the
open routes show anyone (`/health`'s details)."""


def caller_trusted(scope: Scope) -> bool:
    """Whether AccessGate found this request's caller trusted (a valid key, or no keys needed)."""
    return bool(scope.get("state", {}).get(TRUSTED, False))


class AccessGate:
    def __init__(
        self,
        app: ASGIApp,
        keys: KeyChecker,
        redact: Redact,
        open_paths: Collection[str],
        *,
        allow_unauthenticated: bool,
    ) -> None:
        self.app = app
        self.keys = keys
        self.redact = redact
        self.open_paths = frozenset(open_paths)
        self.allow_unauthenticated = allow_unauthenticated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trusted = self._trusted(scope)
        scope.setdefault("state", {})[TRUSTED] = trusted
        if trusted or self._is_open(scope):
            await self.app(scope, receive, send)
            return
        error = unauthorized() if self.keys.enabled else local_callers_only()
        await error_response(error, self.redact)(scope, receive, send)

    def _trusted(self, scope: Scope) -> bool:
        if self.keys.enabled:
            return self.keys.accepts(bearer_token(_header(scope, b"authorization")))
        if self.allow_unauthenticated:
            return True
        client = scope.get("client")
        return client is not None and is_loopback(client[0])

    def _is_open(self, scope: Scope) -> bool:
        if scope["path"] in self.open_paths:
            return True
        # A CORS preflight carries no credentials by design; CORSMiddleware answers it.
        return (
            scope["method"] == "OPTIONS"
            and _header(scope, b"access-control-request-method") is not None
        )


class RateLimits:
    """A token bucket per caller: `per_minute` requests a minute, in bursts of as many.

    At most `max_callers` buckets are kept (the least recently seen go first): callers that
    are not keys (client addresses) cannot grow it without bound."""

    def __init__(
        self,
        per_minute: int,
        *,
        max_callers: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self._per_second = per_minute / 60
        self._max_callers = max_callers
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait_s(self, caller: str) -> float:
        """0 when `caller` may go ahead (the request is counted), else seconds to wait."""
        now = self._clock()
        tokens, seen = self._buckets.pop(caller, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - seen) * self._per_second)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self._per_second
        self._buckets[caller] = (tokens, now)
        while len(self._buckets) > self._max_callers:
            self._buckets.popitem(last=False)
        return wait


class KeyRateLimit:
    def __init__(
        self, app: ASGIApp, limits: RateLimits, redact: Redact, open_paths: Collection[str]
    ) -> None:
        self.app = app
        self.limits = limits
        self.redact = redact
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        wait = self.limits.wait_s(_caller(scope))
        if wait > 0:
            error = rate_limited(max(1, math.ceil(wait)))
            await error_response(error, self.redact)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _caller(scope: Scope) -> str:
    """Who is asking: a digest of the bearer key (the key itself is never kept), else the
    client's address."""
    token = bearer_token(_header(scope, b"authorization"))
    if token:
        return "key:" + hashlib.sha256(token.encode()).hexdigest()
    client = scope.get("client")
    return "address:" + (client[0] if client else "unknown")


class BodyIntake:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        timeout_s: float,
        redact: Redact,
        metrics: ServiceMetrics,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.redact = redact
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(too_large(self.max_bytes), self.redact)(scope, receive, send)
            return
        chunks: list[bytes] = []
        received = 0
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return  # the client hung up before its body was whole
                    chunk = message.get("body", b"")
                    received += len(chunk)
                    if received > self.max_bytes:
                        error = too_large(self.max_bytes)
                        await error_response(error, self.redact)(scope, receive, send)
                        return
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            self.metrics.timeouts.labels("request_body").inc()
            error = body_timed_out(self.timeout_s, received, declared)
            await error_response(error, self.redact)(scope, receive, send)
            return
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        handed = False

        async def replay() -> Message:
            nonlocal handed
            if handed:
                return await receive()  # only the disconnect is left to come
            handed = True
            return whole

        await self.app(scope, replay, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
