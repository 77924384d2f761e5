"""Timeouts on the way in, over real sockets against uvicorn serving conclave: a body that
never arrives whole gets a 408 and its connection closed, headers that never end and a
client that does not read its response lose their connection, each after its bounded time,
and each is counted in /metrics."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx2
import pytest

from conclave.providers.testing import FakeModel
from conclave.server import ServerSettings
from conclave.server.docs_routes import assets_dir

from .conftest import Served, ServeFactory, default_fakes, make_config

DEADLINE_S = 0.5


@pytest.fixture
def hurried(serve: ServeFactory) -> Served:
    """A server whose three deadlines are all half a second."""
    return serve(
        settings=ServerSettings(
            _env_file=None,
            request_head_timeout_s=DEADLINE_S,
            request_body_timeout_s=DEADLINE_S,
            response_write_timeout_s=DEADLINE_S,
        )
    )


def connect(served: Served, *, receive_buffer: int | None = None) -> socket.socket:
    host, port = served.url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect((host, int(port)))
    return sock


def wait_until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def timeouts(served: Served, phase: str) -> float:
    for line in httpx2.get(served.url + "/metrics", timeout=30).text.splitlines():
        if line.startswith(f'conclave_http_timeouts_total{{phase="{phase}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_body_that_never_arrives_whole_gets_a_408_and_the_connection_closes(
    hurried: Served,
) -> None:
    sock = connect(hurried)
    started = time.monotonic()
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" + b'{"model": "'
    )
    answer = read_until_closed(sock)
    took = time.monotonic() - started
    sock.close()

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer.lower()
    assert b"did not arrive within 0.5 s: 11 bytes came of the 1000" in answer
    assert DEADLINE_S <= took < DEADLINE_S + 2
    assert timeouts(hurried, "request_body") == 1
    assert all(not fake.history for fake in hurried.fakes.values())


@pytest.mark.parametrize("sent", [b"", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"])
def test_headers_that_never_end_lose_the_connection(hurried: Served, sent: bytes) -> None:
    sock = connect(hurried)
    started = time.monotonic()
    sock.sendall(sent)
    answer = read_until_closed(sock)
    took = time.monotonic() - started
    sock.close()

    assert answer == b""
    assert DEADLINE_S <= took < DEADLINE_S + 2
    assert timeouts(hurried, "request_head") == 1


def test_a_client_that_does_not_read_its_response_is_dropped(serve: ServeFactory) -> None:
    # An answer larger than every buffer between the server and the client (the kernel's
    # send buffer grows to 4 MB here), so that the response backs up in the server.
    huge = "Paris " * 900_000
    fakes = {**default_fakes(), "agg": FakeModel(default=huge)}
    served = serve(
        fakes=fakes,
        configs=[
            make_config(iterations=0).with_changes(
                aggregator=[{"model": {"id": "agg", "max_tokens": 10**6}}]
            )
        ],
        settings=ServerSettings(_env_file=None, response_write_timeout_s=DEADLINE_S),
    )
    body = b'{"model": "default", "messages": [{"role": "user", "content": "Capital?"}]}'
    sock = connect(served, receive_buffer=4096)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    wait_until(lambda: timeouts(served, "response_write") == 1, timeout_s=30)
    received = read_until_closed(sock)
    sock.close()

    assert received.startswith(b"HTTP/1.1 200 ")
    assert len(received) < len(huge)


def test_a_client_that_keeps_up_is_served_whole_on_one_connection(hurried: Served) -> None:
    size = (assets_dir() / "swagger-ui-bundle.js").stat().st_size
    with httpx2.Client(base_url=hurried.url) as client:
        for _ in range(2):
            response = client.get("/docs/assets/swagger-ui-bundle.js")
            assert len(response.content) == size
            time.sleep(DEADLINE_S / 2)  # idle between requests, within the head deadline
    assert timeouts(hurried, "response_write") == timeouts(hurried, "request_head") == 0
