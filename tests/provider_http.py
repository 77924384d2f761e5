"""Test helpers for providers at the HTTP level: a scripted server behind `httpx2.MockTransport`,
and reading a provider's stream."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Callable

import httpx2

from conclave.types import Completion, TextDelta

Reply = httpx2.Response | Exception | Callable[[httpx2.Request], httpx2.Response]
"""A response, an exception to raise (a transport failure), or a function of the request."""


class ScriptedServer:
    """Answers requests with the replies given, in order, and records every request."""

    def __init__(self, *replies: Reply) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.requests: list[httpx2.Request] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if not self.replies:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        reply = self.replies.popleft()
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return reply

    def client(self) -> httpx2.AsyncClient:
        """An HTTP client whose every request this server answers."""
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.handle))

    def body(self, index: int = -1) -> object:
        """The JSON body of a request received (the last by default)."""
        return json.loads(self.requests[index].content)


async def collect(
    items: AsyncIterator[TextDelta | Completion],
    into: list[TextDelta | Completion] | None = None,
) -> list[TextDelta | Completion]:
    """Every item of a stream, also appended to `into` as it arrives (to see what came before
    an error)."""
    received = [] if into is None else into
    async for item in items:
        received.append(item)
    return received
