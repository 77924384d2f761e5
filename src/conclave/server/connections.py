"""Deadlines on a connection that an ASGI app cannot see: uvicorn's HTTP/1.1 protocol with

- a head deadline: a request's head (its request line and headers) must arrive whole within
  `request_head_timeout_s` of the connection opening or of the previous response ending,
  else the connection is closed (a client that drips its headers holds nothing for long);
- a write deadline: when the client reads so slowly that the response backs up (the
  transport pauses writing), it must catch up within `response_write_timeout_s`, else the
  connection is dropped, whatever is still buffered for it.

The body's own deadline is the app's (`middleware.BodyIntake`, which answers 408). Each
closing is counted in `conclave_http_timeouts_total` by phase. The deadlines and the counter
come from the app's lifespan state (`ConnectionDeadlines` under `DEADLINES_STATE`), so a
protocol serving another app, or an app started without its lifespan, keeps uvicorn's own
behaviour.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from conclave.server.metrics import ServiceMetrics

DEADLINES_STATE = "conclave_connection_deadlines"
"""The key of the app's lifespan state under which the protocol finds its deadlines."""

log = logging.getLogger("conclave.server")


@dataclass(frozen=True)
class ConnectionDeadlines:
    """How long a connection may take over a request's head, and stay backed up."""

    request_head_timeout_s: float
    response_write_timeout_s: float
    metrics: ServiceMetrics


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with the head and write deadlines of the app's state."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        deadlines = self.app_state.get(DEADLINES_STATE)
        self._deadlines = deadlines if isinstance(deadlines, ConnectionDeadlines) else None
        self._head_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._cycle_started: object = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._await_head()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and self.cycle is not self._cycle_started:
            self._cycle_started = self.cycle  # a request's head arrived whole
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        self._await_head()  # before uvicorn reads a pipelined request, which cancels it
        super().on_response_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._deadlines is not None and self._write_timer is None:
            self._write_timer = self.loop.call_later(
                self._deadlines.response_write_timeout_s, self._drop, "response_write"
            )

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().connection_lost(exc)

    def _await_head(self) -> None:
        if self._deadlines is None or self.transport.is_closing():
            return
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(
            self._deadlines.request_head_timeout_s, self._drop, "request_head"
        )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _drop(self, phase: str) -> None:
        """Close the connection at once, dropping whatever is still buffered for it."""
        if phase == "request_head":
            self._head_timer = None
        else:
            self._write_timer = None
        if self.transport.is_closing() and phase == "request_head":
            return
        assert self._deadlines is not None
        self._deadlines.metrics.timeouts.labels(phase).inc()
        client = "%s:%d" % self.client if self.client else "a client"  # noqa: UP031
        log.info("closed the connection of %s: %s deadline passed", client, phase.replace("_", " "))
        self.transport.abort()
