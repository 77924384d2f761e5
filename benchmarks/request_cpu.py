"""CPU per request of conclave's own code: the engine and the app on the shipped fake models,
and the OpenAI-compatible provider's call path against a local upstream.

Three measures, each the CPU time of this process only:

- engine: `ConsensusEngine.run_to_end` on the throughput benchmark's panel (3 members and an
  aggregator, 2 improvement rounds: 12 calls a run), per run of `--requests` made
  `--concurrency` at a time;
- app: the same run as a `POST /v1/chat/completions` through the whole ASGI app (middleware,
  body, options, summary, metrics, redaction), called in-process, with an API key and
  sampling options as `benchmarks/service_throughput.py` sends them; the run store off;
- provider: one `OpenAICompatibleProvider.complete()` (the SDK, httpx2 and aiohttp client
  side of an upstream call: request, response, reading the answer) against
  `benchmarks/service_throughput.py`'s simulated upstream, run in a process of its own and
  answering at once; per call of `--requests` x 5 made `--concurrency` x 2 at a time.

The last line of each source adds them up as the service spends them: app + 12 provider calls
per request.

`--compare DIR` measures another checkout too (its code from DIR/src, in a process of its
own), alternating, `--passes` times each; the lowest of each is printed beside the others.

    .venv/bin/python benchmarks/request_cpu.py
    .venv/bin/python benchmarks/request_cpu.py --passes 4 --compare /tmp/old
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

ANSWER = "The capital of France is Paris, a city on the Seine known for its museums."
API_KEY = "ck-benchmark-0123456789"
MODELS = ("m1", "m2", "m3", "agg")
CALLS_PER_REQUEST = 12
"""Upstream calls of one run of the panel: (3 members + the aggregator) x 3 rounds."""


def _config() -> Any:
    from conclave.config import ConsensusConfig

    return ConsensusConfig.model_validate(
        {
            "name": "bench",
            "models": [{"id": name, "max_tokens": 64} for name in MODELS[:3]],
            "aggregator": [{"model": {"id": "agg", "max_tokens": 64}}],
            "iterations": 2,
            "timeout_s": 60,
        }
    )


def _registry() -> Any:
    from conclave.providers.registry import ProviderRegistry
    from conclave.providers.testing import FakeModel, FakeProvider

    fakes = {name: FakeModel(default=ANSWER) for name in MODELS}
    return ProviderRegistry(overrides={"openrouter": FakeProvider(fakes)})  # type: ignore[arg-type]


async def _engine_cpu_ms(requests: int, concurrency: int) -> float:
    from conclave.consensus.engine import ConsensusEngine
    from conclave.types import Message

    build_panel = _found("build_panel", "conclave.consensus.panel", "conclave.session")
    config = _config()
    engine = ConsensusEngine(config, build_panel(config, _registry()))
    conversation = [Message(role="user", content="Capital of France?")]

    async def one() -> None:
        await engine.run_to_end(conversation)

    return await _cpu_ms_per(one, requests, concurrency)


async def _app_cpu_ms(requests: int, concurrency: int) -> float:
    from conclave.server import create_app

    server_settings = _found("ServerSettings", "conclave.server", "conclave.server.settings")
    config = _config()
    settings = server_settings(_env_file=None, api_keys=API_KEY, max_concurrent_runs=10_000)
    app = create_app([(config.name, config)], settings=settings, registry=_registry())
    body = json.dumps(
        {
            "model": "default",
            "messages": [{"role": "user", "content": "Capital of France?"}],
            "temperature": 0.5,
            "max_tokens": 48,
        }
    ).encode()
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", f"Bearer {API_KEY}".encode()),
    ]
    state: dict[str, object] = {}
    lifespan = asyncio.Queue[MutableMapping[str, Any]]()
    started = asyncio.Event()

    async def lifespan_receive() -> MutableMapping[str, Any]:
        return await lifespan.get()

    async def lifespan_send(message: MutableMapping[str, Any]) -> None:
        started.set()

    await lifespan.put({"type": "lifespan.startup"})
    running = asyncio.ensure_future(
        app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state},
            lifespan_receive,
            lifespan_send,
        )
    )
    await started.wait()

    async def one() -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
            "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080), "state": dict(state),
        }  # fmt: skip
        answered = asyncio.Event()
        sent = False
        statuses: list[int] = []

        async def receive() -> MutableMapping[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            elif not message.get("more_body"):
                answered.set()

        await app(scope, receive, send)
        assert statuses == [200], statuses

    try:
        return await _cpu_ms_per(one, requests, concurrency)
    finally:
        await lifespan.put({"type": "lifespan.shutdown"})
        await running


async def _provider_cpu_ms(port: int, calls: int, concurrency: int) -> float:
    from conclave.providers.openai_compat import OpenAICompatibleProvider
    from conclave.types import Message, SamplingOptions

    provider = OpenAICompatibleProvider(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY, name="bench"
    )
    try:
        await _upstream_ready(port)
        conversation = [Message(role="user", content="Capital of France?")]
        options = SamplingOptions(max_tokens=48, temperature=0.5)

        async def one() -> None:
            await provider.complete("m1", conversation, options)

        return await _cpu_ms_per(one, calls, concurrency)
    finally:
        await provider.aclose()


async def _upstream_ready(port: int) -> None:
    for _ in range(300):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError(f"the simulated upstream did not start on port {port}")


def _found(name: str, *modules: str) -> Any:
    """`name` from the first of `modules` that has it (a checkout may keep it elsewhere)."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"none of {modules} has {name}")


async def _cpu_ms_per(one: Any, requests: int, concurrency: int) -> float:
    for _ in range(50):  # warm up: imports, caches, the first of everything
        await one()
    began = time.process_time()
    for _ in range(0, requests, concurrency):
        await asyncio.gather(*(one() for _ in range(concurrency)))
    return (time.process_time() - began) / requests * 1000


def _measure(requests: int, concurrency: int) -> dict[str, float]:
    """Both measures in this process, with the server's garbage-collector settings."""
    os.environ["CONCLAVE_STORE_ENABLED"] = "false"
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    return {
        "engine": asyncio.run(_engine_cpu_ms(requests, concurrency)),
        "app": asyncio.run(_app_cpu_ms(requests, concurrency)),
        "provider": _provider_measure(requests * 5, concurrency * 2),
    }


def _provider_measure(calls: int, concurrency: int) -> float:
    """The provider's measure, against the simulated upstream in a process of its own."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    upstream_script = Path(__file__).resolve().parent / "service_throughput.py"
    upstream = subprocess.Popen([sys.executable, str(upstream_script), "_upstream", str(port), "0"])
    try:
        return asyncio.run(_provider_cpu_ms(port, calls, concurrency))
    finally:
        upstream.terminate()
        upstream.wait()


def _measure_in(source: Path | None, requests: int, concurrency: int) -> dict[str, float]:
    """The measures of a checkout (this one when `source` is None), in a fresh process."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source.resolve() / "src")
    done = subprocess.run(
        [sys.executable, __file__, "_measure", str(requests), str(concurrency)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    measured: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--compare", type=Path, help="another checkout of conclave")
    args = parser.parse_args()
    sources: list[tuple[str, Path | None]] = [("this", None)]
    if args.compare is not None:
        sources.append((str(args.compare), args.compare))
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in sources}
    for number in range(args.passes):
        for label, source in sources if number % 2 == 0 else sources[::-1]:
            results[label].append(_measure_in(source, args.requests, args.concurrency))
    print(f"CPU ms per request ({args.requests} requests, {args.concurrency} at a time):")
    for label, passes in results.items():
        for measure in ("engine", "app"):
            values = [one[measure] for one in passes]
            shown = ", ".join(f"{value:.3f}" for value in values)
            print(f"  {label:>12} {measure:>6}: lowest {min(values):.3f}  ({shown})")
        service = [one["app"] - one["engine"] for one in passes]
        print(f"  {label:>12} {'app - engine':>6}: lowest {min(service):.3f}")
        values = [one["provider"] for one in passes]
        shown = ", ".join(f"{value:.3f}" for value in values)
        print(f"  {label:>12} provider call: lowest {min(values):.3f}  ({shown})")
        whole = [one["app"] + CALLS_PER_REQUEST * one["provider"] for one in passes]
        print(
            f"  {label:>12} app + {CALLS_PER_REQUEST} calls: lowest {min(whole):.3f}  "
            f"(per request, as the service spends it)"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_measure":
        print(json.dumps(_measure(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        main()
