"""The app's ASGI middleware, outermost first:

- `ErrorGuard`: an exception that escapes a route becomes a 500 with an error id; the log gets
  one line (type and redacted message), never a traceback, never a key;
- `RequestMetrics`: counts requests and their latency by route template;
- `ApiKeyGate`: 401 without a valid bearer key (when keys are configured), except `/health`
  and CORS preflights;
- `BodyLimit`: 413 for a body over the limit, by Content-Length or as it streams in.

All are plain ASGI (no BaseHTTPMiddleware), so a streamed response passes through untouched.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conclave.server.errors import ApiError, too_large, unauthorized
from conclave.server.metrics import ServiceMetrics
from conclave.server.responses import error_response
from conclave.server.security import KeyChecker, bearer_token

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
                error = ApiError(
                    500,
                    f"internal server error (id {error_id}); the server log has the details",
                    type="server_error",
                    code="internal_error",
                )
                await error_response(error, self.redact)(scope, receive, send)


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
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.request_seconds.labels(method, template).observe(
                time.perf_counter() - started
            )


class ApiKeyGate:
    def __init__(
        self, app: ASGIApp, keys: KeyChecker, redact: Redact, open_paths: Collection[str]
    ) -> None:
        self.app = app
        self.keys = keys
        self.redact = redact
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys.enabled or self._is_open(scope):
            await self.app(scope, receive, send)
            return
        if not self.keys.accepts(bearer_token(_header(scope, b"authorization"))):
            await error_response(unauthorized(), self.redact)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _is_open(self, scope: Scope) -> bool:
        if scope["path"] in self.open_paths:
            return True
        # A CORS preflight carries no credentials by design; CORSMiddleware answers it.
        return (
            scope["method"] == "OPTIONS"
            and _header(scope, b"access-control-request-method") is not None
        )


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, redact: Redact) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.redact = redact

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(too_large(self.max_bytes), self.redact)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises HTTPException from body reading; the app maps it.
                    raise HTTPException(413)
            return message

        await self.app(scope, counting_receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
