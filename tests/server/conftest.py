"""A real uvicorn on 127.0.0.1 (in a thread, on a free port) serving an app whose members
are the shipped fakes; tests talk to it with real clients."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import httpx2
import openai
import pytest
import uvicorn
from fastapi import FastAPI

from conclave.attestation.receipts import Attester
from conclave.config import ConsensusConfig
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.server import ServerSettings, create_app
from conclave.server.connections import DeadlineH11Protocol
from conclave.settings import Settings
from provider_http import Reply, ScriptedServer

Fakes = dict[str, FakeModel | FunctionModel]


def make_config(
    members: Sequence[str] = ("a", "b", "c"),
    aggregator: str = "agg",
    *,
    name: str = "panel",
    **changes: object,
) -> ConsensusConfig:
    data: dict[str, object] = {
        "name": name,
        "models": [{"id": member, "max_tokens": 100} for member in members],
        "aggregator": [{"model": {"id": aggregator, "max_tokens": 200}}],
        "iterations": 1,
    }
    data.update(changes)
    return ConsensusConfig.model_validate(data)


def default_fakes() -> Fakes:
    return {
        "a": FakeModel(default="Paris."),
        "b": FakeModel(default="The capital of France is Paris."),
        "c": FakeModel(default="Paris, on the Seine."),
        "agg": FakeModel(default="The capital of France is Paris."),
    }


@dataclass
class Served:
    """A running server: its base URL, the app, the fakes behind it."""

    url: str
    app: FastAPI
    fakes: Fakes
    server: uvicorn.Server = field(repr=False)
    clients: list[openai.OpenAI] = field(default_factory=list, repr=False)
    thread: threading.Thread | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Shut the server down as a restart would, and wait until it has (lifespan included)."""
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=30)

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def openai(self, api_key: str = "unused") -> openai.OpenAI:
        """The official client on this server (no retries; closed after the test)."""
        client = openai.OpenAI(base_url=self.v1, api_key=api_key, max_retries=0)
        self.clients.append(client)
        return client


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a thread cannot take signals
        pass


def run_server(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
        http=DeadlineH11Protocol,  # as `conclave serve` runs
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{port}"


ServeFactory = Callable[..., Served]


@pytest.fixture
def serve() -> Iterator[ServeFactory]:
    """Start a server: `serve(fakes=..., configs=..., settings=...)`; stopped after the test."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []
    served: list[Served] = []

    def start(
        *,
        fakes: Fakes | None = None,
        configs: Sequence[ConsensusConfig] | None = None,
        settings: ServerSettings | None = None,
        attester: Attester | None = None,
    ) -> Served:
        fakes = fakes if fakes is not None else default_fakes()
        configs = configs or [make_config()]
        registry = ProviderRegistry(overrides={"openrouter": FakeProvider(fakes)})
        app = create_app(
            [(config.name, config) for config in configs],
            settings=settings or ServerSettings(_env_file=None),
            registry=registry,
            attester=attester,
        )
        server, thread, url = run_server(app)
        running.append((server, thread))
        served.append(Served(url=url, app=app, fakes=fakes, server=server, thread=thread))
        return served[-1]

    yield start
    for one in served:
        for client in one.clients:
            client.close()
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=10)


UPSTREAM_PRESET = "faulty"
"""The preset `serve_upstream` serves: members a, b, c and aggregator agg at the upstream."""

ServeUpstream = Callable[..., str]


@pytest.fixture
def serve_upstream() -> Iterator[ServeUpstream]:
    """`serve_upstream(reply, settings=None, **config changes)` starts a scripted
    OpenAI-compatible upstream on 127.0.0.1 answering every call with `reply(request)`, and
    conclave in front of it (the real OpenAI-compatible provider, no retries); returns
    conclave's base URL. Everything stops after the test."""
    with contextlib.ExitStack() as stack:
        started: list[tuple[uvicorn.Server, threading.Thread]] = []

        def start(
            reply: Callable[[httpx2.Request], Reply],
            settings: ServerSettings | None = None,
            **changes: object,
        ) -> str:
            upstream_url = stack.enter_context(ScriptedServer(then=reply).listening())
            data: dict[str, object] = {
                "name": UPSTREAM_PRESET,
                "models": [{"id": m, "base_url": upstream_url} for m in ("a", "b", "c")],
                "aggregator": [{"model": {"id": "agg", "base_url": upstream_url}}],
                "iterations": 0,
                "timeout_s": 5,
                "grace_s": 30,
            }
            data.update(changes)
            config = ConsensusConfig.model_validate(data)
            app = create_app(
                [(config.name, config)],
                settings=settings or ServerSettings(_env_file=None),
                registry=ProviderRegistry(Settings(_env_file=None, max_retries=0)),
            )
            server, thread, url = run_server(app)
            started.append((server, thread))
            return url

        try:
            yield start
        finally:
            for server, thread in started:
                server.should_exit = True
                thread.join(timeout=10)


@pytest.fixture
def served(serve: ServeFactory) -> Served:
    """A server with the default panel: members a, b, c and aggregator agg, one improvement."""
    return serve()


def read_events(v1: str, body: dict[str, object]) -> list[tuple[str, dict[str, object]]]:
    """Every `event: <name>` of a `POST {v1}/consensus/stream` response, with its JSON data."""
    events = []
    with httpx2.stream("POST", v1 + "/consensus/stream", json=body, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    return events
