"""Service throughput: `conclave serve` under 1, 50 and 200 concurrent clients.

Three processes, as in production:

- a simulated OpenAI-compatible upstream (raw asyncio, HTTP/1.1 keep-alive) on 127.0.0.1,
  whose every call answers after `--delay` seconds (0.5 s); streamed calls get SSE chunks;
- `conclave serve` (real uvicorn, the real OpenAICompatibleProvider and openai SDK) with a
  panel of 3 members plus an aggregator and 2 improvement rounds, all at the upstream:
  12 upstream calls per request, critical path 3 x (0.5 + 0.5) = 3 s;
- a lean load generator (raw asyncio sockets, keep-alive) posting OpenAI chat requests
  from N concurrent clients in a closed loop.

Printed per level: requests/s, p50/p99 latency as a ratio to the critical path, CPU
milliseconds of the conclave server (all its processes) per upstream call, its CPU use (100% =
one core), and the CPU that other processes of the machine took meanwhile ("others", of one
core): on a shared 2-core machine that last column says how far to trust the others.

Every request carries an API key (the server requires it) and sampling options
(`temperature`, `max_tokens`), so that the service does all it does for a real client;
`--no-api-key` and `--no-request-options` leave them out.

`--compare DIR` measures another checkout of conclave (e.g. an older commit in a
`git worktree`) in the same invocation, its server run from `DIR/src`: each pass measures
both, in alternating order, under the same conditions, and the end prints the ratio per pass.

    .venv/bin/python benchmarks/service_throughput.py
    .venv/bin/python benchmarks/service_throughput.py --levels 200 --http-client httpx
    .venv/bin/python benchmarks/service_throughput.py --workers 2
    .venv/bin/python benchmarks/service_throughput.py --levels 200 --store on --passes 3 \
        --compare /tmp/old

The last line of each level is what to compare: at 200 clients the physical limit is
200 / 3 s = 66.7 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
MEMBERS = ("m1", "m2", "m3")
IMPROVEMENT_ROUNDS = 2
CALLS_PER_REQUEST = (len(MEMBERS) + 1) * (IMPROVEMENT_ROUNDS + 1)
ANSWER = "The capital of France is Paris, a city on the Seine known for its museums."


# --- the simulated upstream -----------------------------------------------------------------


def _completion_response() -> bytes:
    body = json.dumps(
        {
            "id": "cmpl-sim",
            "object": "chat.completion",
            "created": 0,
            "model": "sim",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ANSWER},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 20, "completion_tokens": 16, "total_tokens": 36},
        }
    ).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % len(body) + body


def _stream_response() -> bytes:
    base = {"id": "cmpl-sim", "object": "chat.completion.chunk", "created": 0, "model": "sim"}
    words = ANSWER.split(" ")
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"content": (" " if i else "") + word}}]}
        for i, word in enumerate(words)
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    usage = {"prompt_tokens": 20, "completion_tokens": 16, "total_tokens": 36}
    chunks.append({**base, "choices": [], "usage": usage})
    events = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
    body = events.encode()
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    return head + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"


@dataclass(frozen=True)
class Faults:
    """Calls the simulated upstream fails at once with HTTP 500: every call to the models named
    in `always`, and a `rate` fraction of all others, at random (seeded)."""

    always: tuple[str, ...] = ()
    rate: float = 0.0
    seed: int = 0

    def to_args(self) -> list[str]:
        return [",".join(self.always), str(self.rate), str(self.seed)]

    @classmethod
    def from_args(cls, always: str, rate: str, seed: str) -> Faults:
        return cls(tuple(name for name in always.split(",") if name), float(rate), int(seed))


def _failure_response() -> bytes:
    body = json.dumps({"error": {"message": "injected failure", "type": "server_error"}}).encode()
    head = (
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n"
    )
    return head % len(body) + body


class _Upstream(asyncio.Protocol):
    calls = 0
    failures = 0
    completion = _completion_response()
    stream = _stream_response()
    failure = _failure_response()

    def __init__(self, delay_s: float, faults: Faults, rng: random.Random) -> None:
        self.delay_s = delay_s
        self.faults = faults
        self.rng = rng
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        loop = asyncio.get_running_loop()
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15 :].split(b"\r\n", 1)[0])
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            if head.startswith(b"get /stats"):
                text = str(_Upstream.calls).encode()
                self._send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text))
                continue
            _Upstream.calls += 1
            if self._fails(body):
                _Upstream.failures += 1
                self._send(self.failure)
                continue
            streamed = b'"stream":true' in body or b'"stream": true' in body
            loop.call_later(self.delay_s, self._send, self.stream if streamed else self.completion)

    def _fails(self, body: bytes) -> bool:
        if self.faults.always and json.loads(body).get("model") in self.faults.always:
            return True
        return self.faults.rate > 0 and self.rng.random() < self.faults.rate

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def run_upstream(port: int, delay_s: float, faults: Faults = Faults()) -> None:
    loop = asyncio.get_running_loop()
    rng = random.Random(faults.seed)
    server = await loop.create_server(
        lambda: _Upstream(delay_s, faults, rng), HOST, port, backlog=4096
    )
    await server.serve_forever()


# --- the load generator -----------------------------------------------------------------------


@dataclass
class Sample:
    started: float
    ended: float
    ok: bool
    status: int = 200
    """The HTTP status, or 0 when the connection failed before a response."""
    code: str = ""
    """The `code` of an error body (`aggregator_failed`, `quorum_not_reached`, ...)."""


async def _client(
    port: int,
    request: bytes,
    start_after: float,
    stop_at: float,
    samples: list[Sample],
    errors: list[str],
) -> None:
    # Clients start spread over one critical path, so that requests flow evenly instead of
    # in waves of `clients` at once.
    await asyncio.sleep(start_after)
    while time.perf_counter() < stop_at:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    status, body = await _exchange(reader, writer, request)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    samples.append(
                        Sample(started, time.perf_counter(), False, 0, type(exc).__name__)
                    )
                    if len(errors) < 5:
                        errors.append(f"connection: {exc!r}")
                    break  # a new connection
                ok = status == 200 and ANSWER.encode() in body
                if not ok and len(errors) < 5:
                    errors.append(f"{status}: {body[:300]!r}")
                samples.append(Sample(started, time.perf_counter(), ok, status, _error_code(body)))
        finally:
            writer.close()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


def _error_code(body: bytes) -> str:
    at = body.find(b'"code":"')
    return "" if at < 0 else body[at + 8 : body.find(b'"', at + 8)].decode()


API_KEY = "ck-benchmark-0123456789"
REQUEST_OPTIONS = {"temperature": 0.5, "max_tokens": 48}


async def run_load(
    port: int,
    clients: int,
    warmup_s: float,
    measure_s: float,
    spread_s: float,
    api_key: str = "",
    options: bool = False,
) -> dict[str, object]:
    body: dict[str, object] = {
        "model": "default",
        "messages": [{"role": "user", "content": "Capital of France?"}],
    }
    if options:
        body.update(REQUEST_OPTIONS)
    payload = json.dumps(body).encode()
    authorization = b"Authorization: Bearer %s\r\n" % api_key.encode() if api_key else b""
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
        b"%sContent-Length: %d\r\n\r\n%s"
        % (HOST.encode(), port, authorization, len(payload), payload)
    )
    samples: list[Sample] = []
    errors: list[str] = []
    begin = time.perf_counter()
    window = (begin + warmup_s, begin + warmup_s + measure_s)
    await asyncio.gather(
        *(
            _client(port, request, spread_s * i / clients, window[1], samples, errors)
            for i in range(clients)
        )
    )
    in_window = [s for s in samples if window[0] <= s.started and s.ended <= window[1] + 60]
    done_in_window = [s for s in samples if window[0] <= s.ended <= window[1]]
    latencies = sorted(s.ended - s.started for s in in_window)
    outcomes: dict[str, int] = {}
    for sample in samples:
        outcome = "ok" if sample.ok else f"{sample.status} {sample.code}".strip()
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {
        "requests_per_s": len([s for s in done_in_window if s.ok]) / measure_s,
        "latencies": latencies,
        "failed": sum(1 for s in samples if not s.ok),
        "total": len(samples),
        "outcomes": outcomes,
        "errors": errors,
    }


# --- the conductor ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, path: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                if sock.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def _upstream_calls(port: int) -> int:
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
        return int(sock.recv(200).split(b"\r\n\r\n", 1)[1])


def _cpu_s(pid: int) -> float:
    """CPU seconds used by a process and all its live descendants (the workers)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            stats[int(entry.name)] = (int(fields[1]), cpu)
    tree, total, grew = {pid}, 0.0, True
    while grew:
        children = {p for p, (parent, _) in stats.items() if parent in tree} - tree
        grew = bool(children)
        tree |= children
    for member in tree:
        total += stats.get(member, (0, 0.0))[1]
    return total


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    busy = sum(fields[:3]) + sum(fields[5:8])  # user nice system, irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _config(upstream_port: int) -> dict[str, object]:
    url = f"http://{HOST}:{upstream_port}/v1"
    return {
        "name": "bench",
        "models": [{"id": name, "base_url": url, "max_tokens": 64} for name in MEMBERS],
        "aggregator": [{"model": {"id": "agg", "base_url": url, "max_tokens": 64}}],
        "iterations": IMPROVEMENT_ROUNDS,
        "timeout_s": 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,50,200", help="concurrent clients per level")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds per upstream call")
    parser.add_argument("--measure", type=float, default=15.0, help="seconds measured per level")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before measuring")
    parser.add_argument("--workers", type=int, default=1, help="conclave server processes")
    parser.add_argument(
        "--pure-python",
        action="store_true",
        help="serve on asyncio's own loop and h11, as without uvloop and httptools",
    )
    parser.add_argument(
        "--http-client",
        choices=("default", "aiohttp", "httpx"),
        default="default",
        help="the providers' HTTP client (default: the provider's own choice)",
    )
    parser.add_argument(
        "--store",
        default="off,on",
        help="passes with the run store off (memory) and on (SQLite), in this order "
        "(e.g. off,on,off,on); their requests/s are compared at the end",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        help="another checkout of conclave to measure in the same run (its server from DIR/src)",
    )
    parser.add_argument("--passes", type=int, default=1, help="measurements of each source")
    parser.add_argument(
        "--api-key",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the server requires an API key and every request sends it",
    )
    parser.add_argument(
        "--request-options",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="every request carries sampling options (temperature, max_tokens)",
    )
    args = parser.parse_args()
    critical_path = 2 * args.delay * (IMPROVEMENT_ROUNDS + 1)
    levels = [int(level) for level in args.levels.split(",")]
    print(
        f"conclave serve: {len(MEMBERS)} members + aggregator, {IMPROVEMENT_ROUNDS} "
        f"improvement rounds, upstream {args.delay * 1000:.0f} ms per call: "
        f"{CALLS_PER_REQUEST} calls and a {critical_path:.1f} s critical path per "
        f"request; HTTP client: {args.http_client}; {args.workers} server process(es)"
        + ("; asyncio loop and h11" if args.pure_python else "")
    )
    sources: list[tuple[str, Path | None]] = [("this", None)]
    if args.compare is not None:
        sources.append((f"compare ({args.compare})", args.compare))
    rates: dict[tuple[str, str], list[dict[int, float]]] = {}
    for number in range(args.passes):
        for store in args.store.split(","):
            # Alternate which source goes first, so that neither always meets the same load.
            for label, source in sources if number % 2 == 0 else sources[::-1]:
                print(f"pass {number + 1}, {label}:")
                measured = _measure(args, store == "on", levels, critical_path, source)
                rates.setdefault((label, store), []).append(measured)
    stores = list(dict.fromkeys(args.store.split(",")))
    if "on" in stores and "off" in stores:
        print("run store on / off, requests/s (mean of the passes):")
        for clients in levels:
            on = statistics.mean(rate[clients] for rate in rates[("this", "on")])
            off = statistics.mean(rate[clients] for rate in rates[("this", "off")])
            print(f"{clients:>7} clients: {on:.1f} / {off:.1f} = {on / off:.3f}")
    if args.compare is not None:
        compared = sources[1][0]
        print(f"this / {compared}, requests/s per pass (and the ratio):")
        for store in stores:
            for clients in levels:
                pairs = zip(rates[("this", store)], rates[(compared, store)], strict=True)
                cells = [
                    f"{a[clients]:.1f}/{b[clients]:.1f}={a[clients] / b[clients]:.3f}"
                    for a, b in pairs
                ]
                print(f"  store {store:>3}, {clients:>4} clients: " + "  ".join(cells))


def _measure(
    args: argparse.Namespace,
    store: bool,
    levels: list[int],
    critical_path: float,
    source: Path | None = None,
) -> dict[int, float]:
    """One pass: the service (of this checkout, or of `source`) with the run store on
    (SQLite, a fresh file) or off (memory), loaded at each level; returns requests/s per
    level."""
    rates: dict[int, float] = {}
    api_key = API_KEY if args.api_key else ""
    with running_service(
        delay_s=args.delay,
        http_client=args.http_client,
        pure_python=args.pure_python,
        workers=args.workers,
        max_concurrent_runs=10000,
        store=store,
        source=source,
        api_key=api_key,
    ) as service:
        print(f"run store {'on' if store else 'off'}:")
        print(
            f"{'clients':>7} {'req/s':>7} {'limit':>6} {'p50/cp':>7} {'p99/cp':>7} "
            f"{'CPU ms/call':>11} {'server CPU':>10} {'others':>6} {'failed':>6}"
        )
        upstream, server = service.upstream, service.server
        for clients in levels:
            calls_before, cpu_before = _upstream_calls(service.upstream_port), _cpu_s(server.pid)
            ours_before = _cpu_s(upstream.pid) + _children_cpu_s()
            machine_before = _machine_busy_s()
            began = time.perf_counter()
            result = measure_load(
                service.server_port,
                clients,
                args.warmup,
                args.measure,
                critical_path,
                api_key=api_key,
                options=args.request_options,
            )
            elapsed = time.perf_counter() - began
            calls = _upstream_calls(service.upstream_port) - calls_before
            cpu = _cpu_s(server.pid) - cpu_before
            ours = cpu + _cpu_s(upstream.pid) + _children_cpu_s() - ours_before
            others = max(0.0, _machine_busy_s() - machine_before - ours)
            latencies = result.latencies
            p50 = statistics.median(latencies) / critical_path if latencies else float("nan")
            p99 = _percentile(latencies, 0.99) / critical_path if latencies else float("nan")
            limit = clients / critical_path
            rates[clients] = result.requests_per_s
            print(
                f"{clients:>7} {result.requests_per_s:>7.1f} {limit:>6.1f} {p50:>7.3f} "
                f"{p99:>7.3f} {cpu * 1000 / max(calls, 1):>11.3f} "
                f"{cpu / elapsed * 100:>9.0f}% {others / elapsed * 100:>5.0f}% "
                f"{result.failed:>6}",
                flush=True,
            )
            for error in result.errors:
                print(f"        error: {error}")
        if store and source is None:
            kept = json.loads(_server_text(service.server_port, "/v1/transcripts?limit=1", api_key))
            print(f"        runs kept: {kept['total']}")
    return rates


@dataclass(frozen=True)
class RunningService:
    """The simulated upstream and `conclave serve` in front of it, each its own process."""

    upstream: subprocess.Popen[bytes]
    server: subprocess.Popen[bytes]
    upstream_port: int
    server_port: int


@contextmanager
def running_service(
    *,
    delay_s: float,
    http_client: str = "default",
    pure_python: bool = False,
    workers: int = 1,
    faults: Faults = Faults(),
    config_changes: Mapping[str, object] | None = None,
    max_concurrent_runs: int | None = None,
    store: bool = False,
    source: Path | None = None,
    api_key: str = "",
) -> Iterator[RunningService]:
    """Start the upstream (with `faults`) and `conclave serve` on the benchmark's panel (with
    `config_changes`); both are stopped on the way out. `max_concurrent_runs`: the server's
    cap on runs (its own default when None); `store`: keep runs in a fresh SQLite file (else
    in memory only); `source`: run the server of another checkout (its `src`); `api_key`:
    the one key the server accepts (none: no keys)."""
    python = sys.executable
    me = str(Path(__file__).resolve())
    upstream_port, server_port = _free_port(), _free_port()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        upstream = subprocess.Popen(
            [python, me, "_upstream", str(upstream_port), str(delay_s), *faults.to_args()]
        )
        processes.append(upstream)
        _wait_for(upstream_port, "/stats")
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "bench.json"
            config.write_text(json.dumps({**_config(upstream_port), **(config_changes or {})}))
            env = {
                **os.environ,
                "CONCLAVE_STORE_ENABLED": str(store).lower(),
                "CONCLAVE_STORE_URL": f"sqlite:///{tmp}/runs.db",
            }
            if max_concurrent_runs is not None:
                env["CONCLAVE_MAX_CONCURRENT_RUNS"] = str(max_concurrent_runs)
            if source is not None:
                env["PYTHONPATH"] = str(source.resolve() / "src")
            if api_key:
                env["CONCLAVE_API_KEYS"] = api_key
            server_log = (Path(tmp) / "server.log").open("wb")
            server = subprocess.Popen(
                [python, me, "_server", http_client, str(pure_python), "--host", HOST,
                 "--port", str(server_port), "--config", str(config), "--no-access-log",
                 "--workers", str(workers)],
                env=env, stdout=server_log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            processes.append(server)
            try:
                _wait_for(server_port, "/health")
            except RuntimeError:
                print((Path(tmp) / "server.log").read_text(), file=sys.stderr)
                raise
            yield RunningService(upstream, server, upstream_port, server_port)
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=15)


@dataclass(frozen=True)
class LoadResult:
    """What the load generator saw: answered requests per second in the measured window,
    the latencies of the requests started in it, and every request's outcome (`ok`, or the
    status and error code, `0` for a failed connection)."""

    requests_per_s: float
    latencies: list[float]
    failed: int
    total: int
    outcomes: dict[str, int]
    errors: list[str]


def measure_load(
    server_port: int,
    clients: int,
    warmup_s: float,
    measure_s: float,
    spread_s: float,
    *,
    api_key: str = "",
    options: bool = False,
) -> LoadResult:
    """Run the load generator (its own process) against the server and return what it saw."""
    load = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "_load", str(server_port), str(clients),
         str(warmup_s), str(measure_s), str(spread_s), api_key, str(options)],
        check=True, capture_output=True,
    )  # fmt: skip
    return LoadResult(**json.loads(load.stdout))


def _server_text(port: int, path: str, api_key: str = "") -> str:
    """GET a path of the conclave server; its body as text."""
    authorization = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: x\r\n{authorization}Connection: close\r\n\r\n".encode()
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received.split(b"\r\n\r\n", 1)[1].decode()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _serve(http_client: str, pure_python: bool, cli_args: list[str]) -> None:
    """Run `conclave serve`, with the providers' HTTP client (or uvicorn's loop and HTTP
    parser) swapped when asked to."""
    if pure_python:
        from uvicorn import config

        config.LOOP_FACTORIES["auto"] = config.LOOP_FACTORIES["asyncio"]
        config.HTTP_PROTOCOLS["auto"] = config.HTTP_PROTOCOLS["h11"]
    if http_client != "default":
        from functools import partial

        from conclave.providers import openai_compat
        from conclave.providers.openai_compat import HttpTransport

        transports: dict[str, HttpTransport] = {"aiohttp": "aiohttp", "httpx": "httpx"}
        transport = transports[http_client]  # argparse's choices checked it in the parent
        openai_compat.make_http_client = partial(openai_compat.make_http_client, transport)
    from conclave.cli import app

    app(["serve", *cli_args])


if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "_upstream":
        faults = Faults.from_args(*sys.argv[4:7]) if len(sys.argv) > 4 else Faults()
        asyncio.run(run_upstream(int(sys.argv[2]), float(sys.argv[3]), faults))
    elif role == "_server":
        _serve(sys.argv[2], sys.argv[3] == "True", sys.argv[4:])
    elif role == "_load":
        port, clients, warmup, measure, spread, key, options = sys.argv[2:9]
        outcome = asyncio.run(
            run_load(
                int(port),
                int(clients),
                float(warmup),
                float(measure),
                float(spread),
                api_key=key,
                options=options == "True",
            )
        )
        print(json.dumps(outcome))
    else:
        main()
