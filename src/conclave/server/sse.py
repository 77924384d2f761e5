"""Server-sent events: the frame format, keep-alive comments, and a response that always
closes its source, whether the stream ends, fails or the client hangs up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import aclosing, suppress
from typing import Generic, TypeVar

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

T = TypeVar("T")

KEEPALIVE = b": keep-alive\n\n"
"""A comment line: clients (and the openai SDK) skip it; proxies see the stream is alive."""

log = logging.getLogger("conclave.server")


def data_frame(payload: bytes | str) -> bytes:
    """`data: <payload>` followed by the blank line that ends an event."""
    body = payload.encode() if isinstance(payload, str) else payload
    return b"data: " + body + b"\n\n"


def event_frame(name: str, payload: bytes | str) -> bytes:
    """A named event (`event: <name>`) with one data line."""
    return b"event: " + name.encode() + b"\n" + data_frame(payload)


class Heartbeat:
    """Yielded by `with_heartbeats` when the source has been quiet for an interval."""


HEARTBEAT = Heartbeat()


class _End(Generic[T]):
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


async def with_heartbeats(
    source: AsyncGenerator[T, None], interval_s: float
) -> AsyncGenerator[T | Heartbeat, None]:
    """The items of `source`, with HEARTBEAT whenever none came for `interval_s`.

    The source runs in its own task so that waiting with a timeout never cancels it midway;
    closing this generator cancels that task, which closes the source."""
    queue: asyncio.Queue[T | _End[T]] = asyncio.Queue()

    async def pump() -> None:
        try:
            async with aclosing(source) as items:
                async for item in items:
                    queue.put_nowait(item)
        except Exception as exc:
            queue.put_nowait(_End(exc))
        else:
            queue.put_nowait(_End())

    task = asyncio.ensure_future(pump())
    try:
        while True:
            try:
                async with asyncio.timeout(interval_s):
                    item = await queue.get()
            except TimeoutError:
                yield HEARTBEAT
                continue
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def frames_with_keepalives(
    source: AsyncGenerator[T, None], interval_s: float, render: Callable[[T], Iterable[bytes]]
) -> AsyncGenerator[bytes, None]:
    """The frames `render` makes of each item of `source`, with a keep-alive comment whenever
    the source was quiet for `interval_s`. The one loop every event stream of the service runs."""
    async with aclosing(with_heartbeats(source, interval_s)) as items:
        async for item in items:
            if isinstance(item, Heartbeat):
                yield KEEPALIVE
            else:
                for frame in render(item):
                    yield frame


class EventStreamResponse(StreamingResponse):
    """`text/event-stream` from an async generator of frames.

    Unlike Starlette's StreamingResponse it watches for the client hanging up on every ASGI
    version, stops the stream then, and always closes the generator and calls `on_close`
    (which gives back the run's slot), even when the stream was never started. A client that
    hangs up (OSError on send) is not an error."""

    def __init__(
        self,
        frames: AsyncGenerator[bytes, None],
        *,
        on_close: Callable[[], Awaitable[None]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            frames,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
        )
        self._frames = frames
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.ensure_future(self._stream(send))
        watching = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await asyncio.wait((streaming, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, watching):
                task.cancel()
            await asyncio.gather(streaming, watching, return_exceptions=True)
            await self._frames.aclose()
            if self._on_close is not None:
                await self._on_close()
        error = None if streaming.cancelled() else streaming.exception()
        if error is not None and not isinstance(error, OSError):
            raise error  # a bug in a frame generator: the app's guard logs it

    async def _stream(self, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        await send({**start, "headers": self.raw_headers})
        async for frame in self._frames:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
