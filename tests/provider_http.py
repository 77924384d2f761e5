"""Test helpers for providers at the HTTP level: a scripted server, reached either through
`httpx2.MockTransport` (`client()`) or over a real socket on 127.0.0.1 (`listening()`), and
reading a provider's stream.

Over the socket the server can also misbehave as a real upstream does: answer slowly, drip a
stream, stop a stream halfway, reset the connection, or never answer (see `Streamed` and
`Silence`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal

import httpx2

from conclave.types import Completion, TextDelta

StreamEnding = Literal["end", "close", "reset", "hang"]
"""How a `Streamed` reply ends: `end` finishes the HTTP body properly (whatever the events
said), `close` closes the connection mid-body, `reset` resets it (TCP RST) mid-body, `hang`
sends nothing more and keeps the connection open."""


@dataclass(frozen=True)
class Streamed:
    """A reply sent piece by piece (chunked), `interval_s` apart: SSE events or any bytes."""

    pieces: Sequence[bytes]
    interval_s: float = 0.0
    ending: StreamEnding = "end"
    status: int = 200
    headers: Mapping[str, str] = field(
        default_factory=lambda: {"content-type": "text/event-stream"}
    )
    delay_s: float = 0.0
    """Seconds before the status line is sent."""


@dataclass(frozen=True)
class Silence:
    """A request that is read and never answered (the connection stays open)."""


Reply = httpx2.Response | Exception | Streamed | Silence | Callable[[httpx2.Request], "Reply"]
"""A response, an exception to raise (a transport failure; over a socket, a connection reset),
a socket-level behaviour, or a function of the request that returns one of these."""


class ScriptedServer:
    """Answers requests with the replies given, in order, then with `then(request)` if given;
    records every request."""

    def __init__(self, *replies: Reply, then: Callable[[httpx2.Request], Reply] | None = None):
        self.replies: deque[Reply] = deque(replies)
        self.then = then
        self.requests: list[httpx2.Request] = []
        self._lock = threading.Lock()

    def reply_to(self, request: httpx2.Request) -> httpx2.Response | Exception | Streamed | Silence:
        """Record the request and choose its reply."""
        with self._lock:
            self.requests.append(request)
            if self.replies:
                reply: Reply = self.replies.popleft()
            elif self.then is not None:
                reply = self.then
            else:
                raise AssertionError(f"unexpected request {request.method} {request.url}")
        while callable(reply):
            reply = reply(request)
        return reply

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        reply = self.reply_to(request)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, Streamed | Silence):
            raise AssertionError("socket-level replies need the server `listening()`")
        return reply

    def client(self) -> httpx2.AsyncClient:
        """An HTTP client whose every request this server answers."""
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.handle))

    def body(self, index: int = -1) -> object:
        """The JSON body of a request received (the last by default)."""
        return json.loads(self.requests[index].content)

    @contextlib.contextmanager
    def listening(self) -> Iterator[str]:
        """Serve over HTTP/1.1 on 127.0.0.1 (on its own thread and event loop) while inside;
        yields the base URL, `http://127.0.0.1:<port>/v1`."""
        listener = _Listener(self)
        listener.start()
        try:
            yield f"http://127.0.0.1:{listener.port}/v1"
        finally:
            listener.stop()


class _Listener:
    """The socket side of a ScriptedServer."""

    def __init__(self, script: ScriptedServer) -> None:
        self._script = script
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._connections: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    def start(self) -> None:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._open(), self._loop)
        self.port = started.result(timeout=10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _open(self) -> int:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while await self._exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request and answer it; False when the connection is to be dropped."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = [tuple(line.split(":", 1)) for line in header_lines if ":" in line]
        length = next((int(v) for k, v in headers if k.strip().lower() == "content-length"), 0)
        body = await reader.readexactly(length)
        request = httpx2.Request(
            method,
            f"http://127.0.0.1:{self.port}{target}",
            headers=[(k.strip(), v.strip()) for k, v in headers],
            content=body,
        )
        reply = self._script.reply_to(request)
        if isinstance(reply, Silence):
            await asyncio.Event().wait()
            return False
        if isinstance(reply, Exception):
            await _reset(writer)
            return False
        if isinstance(reply, Streamed):
            return await _send_streamed(writer, reply)
        await reply.aread()
        writer.write(_status_and_headers(reply.status_code, reply.headers, len(reply.content)))
        writer.write(reply.content)
        await writer.drain()
        return True


def _status_and_headers(status: int, headers: Mapping[str, str], length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    for name, value in headers.items():
        if name.lower() not in ("content-length", "transfer-encoding", "content-encoding"):
            lines.append(f"{name}: {value}")
    lines.append("transfer-encoding: chunked" if length is None else f"content-length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send_streamed(writer: asyncio.StreamWriter, reply: Streamed) -> bool:
    await asyncio.sleep(reply.delay_s)
    writer.write(_status_and_headers(reply.status, reply.headers, None))
    for index, piece in enumerate(reply.pieces):
        if index and reply.interval_s:
            await asyncio.sleep(reply.interval_s)
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        await writer.drain()
    if reply.ending == "hang":
        await asyncio.Event().wait()
    if reply.ending == "reset":
        await _reset(writer)
        return False
    if reply.ending == "close":
        return False
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True


async def _reset(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a TCP reset, after what was written has left."""
    await writer.drain()
    await asyncio.sleep(0.05)
    sock: socket.socket = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def sse_events(*payloads: object, done: bool = True) -> tuple[bytes, ...]:
    """SSE `data:` events of JSON payloads, then `data: [DONE]` unless `done` is False."""
    events = tuple(f"data: {json.dumps(payload)}\n\n".encode() for payload in payloads)
    return (*events, b"data: [DONE]\n\n") if done else events


def answer_json(model: str, text: str) -> dict[str, object]:
    """A whole chat completion in OpenAI's shape."""
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 1747311823,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 17, "completion_tokens": 3, "total_tokens": 20},
    }


def answer_chunks(model: str, text: str) -> list[dict[str, object]]:
    """A streamed chat completion in OpenAI's shape: one chunk per word, the finish, the
    usage."""
    base = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "model": model}
    words = text.split(" ")
    chunks: list[dict[str, object]] = [
        {**base, "choices": [{"index": 0, "delta": {"content": (" " if i else "") + word}}]}
        for i, word in enumerate(words)
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    usage = {"prompt_tokens": 17, "completion_tokens": len(words), "total_tokens": 17}
    chunks.append({**base, "choices": [], "usage": usage})
    return chunks


class ModelUpstream:
    """An OpenAI-compatible upstream serving several models, for `ScriptedServer(then=...)`:
    each model answers `"<model> says Paris."` (whole or streamed, as asked), except that the
    replies queued for a model with `fail()` are served first, in order."""

    def __init__(self, **scripts: Sequence[Reply]) -> None:
        self._queued: dict[str, deque[Reply]] = {m: deque(r) for m, r in scripts.items()}
        self._lock = threading.Lock()

    def __call__(self, request: httpx2.Request) -> Reply:
        body = json.loads(request.content)
        model: str = body["model"]
        with self._lock:
            queued = self._queued.get(model)
            if queued:
                return queued.popleft()
        return self.answer(model, streamed=bool(body.get("stream")))

    def fail(self, model: str, *replies: Reply) -> None:
        """Queue replies for the next calls to `model`."""
        with self._lock:
            self._queued.setdefault(model, deque()).extend(replies)

    @staticmethod
    def text(model: str) -> str:
        return f"{model} says Paris."

    def answer(self, model: str, *, streamed: bool, interval_s: float = 0.0) -> Reply:
        """The model's correct answer, whole or as an SSE stream `interval_s` per piece."""
        if not streamed:
            return httpx2.Response(200, json=answer_json(model, self.text(model)))
        return Streamed(sse_events(*answer_chunks(model, self.text(model))), interval_s)


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
