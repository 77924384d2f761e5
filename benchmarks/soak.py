"""Soak: `conclave serve` under 200 clients for minutes, while its upstream fails.

The set-up of benchmarks/service_throughput.py (a simulated OpenAI-compatible upstream on
127.0.0.1 answering after `--delay` seconds, real uvicorn serving conclave with 3 members, an
aggregator and 2 improvement rounds, a closed-loop load generator), with faults injected
upstream: one member (`m3`) always answers HTTP 500, and `--failure-rate` of all other calls
(members and aggregator) answer HTTP 500 at random.

First the same load without faults (`--fault-free-minutes`): on a 2-core machine that also
runs the load generator and the upstream, that run says how far the critical path can be
approached at all. Then the soak. Printed: requests lost (neither an answer nor an early 429:
must be 0), 502s although members had answered (`aggregator_failed`), p50 and p99 latency as
ratios of the critical path (bars: 1.2 and 1.5) and of the fault-free run, throughput, what the
server counted (failed member calls by type, `late`: a straggler the round stopped waiting for,
`cooldown`: a resting member skipped; the members' breakers), and where the time of a sample
of runs went: the members' part of each round, the aggregator's (its retries included), and the
rest (the server's own CPU and queueing), each against the upstream's own time.

    .venv/bin/python benchmarks/soak.py                 # 10 minutes
    .venv/bin/python benchmarks/soak.py --minutes 2 --workers 2 --fault-free-minutes 1
    .venv/bin/python benchmarks/soak.py --minutes 2 --grace-floor 0.1 --straggler-factor 1.2
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from conclave.consensus.transcript import Transcript
from service_throughput import (
    HOST,
    IMPROVEMENT_ROUNDS,
    Faults,
    LoadResult,
    _cpu_s,
    _machine_busy_s,
    _percentile,
    _server_text,
    measure_load,
    running_service,
)

DEAD_MEMBER = "m3"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes measured")
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds per upstream call")
    parser.add_argument("--failure-rate", type=float, default=0.2, help="calls failing at random")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")
    parser.add_argument(
        "--fault-free-minutes",
        type=float,
        default=2.0,
        help="minutes of the same load without faults first, to compare with (0: none)",
    )
    parser.add_argument("--workers", type=int, default=1, help="conclave server processes")
    parser.add_argument("--grace", type=float, help="config grace_s (default: derived)")
    parser.add_argument("--grace-factor", type=float, help="config grace_factor")
    parser.add_argument("--grace-floor", type=float, help="config grace_floor_s")
    parser.add_argument("--straggler-factor", type=float, help="config straggler_factor")
    parser.add_argument("--breaker-failures", type=int, help="config breaker_failures")
    parser.add_argument("--breaker-cooldown", type=float, help="config breaker_cooldown_s")
    args = parser.parse_args()

    changes = {
        name: value
        for name, value in (
            ("grace_s", args.grace),
            ("grace_factor", args.grace_factor),
            ("grace_floor_s", args.grace_floor),
            ("straggler_factor", args.straggler_factor),
            ("breaker_failures", args.breaker_failures),
            ("breaker_cooldown_s", args.breaker_cooldown),
        )
        if value is not None
    }
    critical_path = 2 * args.delay * (IMPROVEMENT_ROUNDS + 1)
    fault_free: LoadResult | None = None
    if args.fault_free_minutes > 0:
        print(
            f"fault-free: {args.clients} clients for {args.fault_free_minutes:g} min after "
            f"{args.warmup:g} s warm-up; {args.workers} server process(es)",
            flush=True,
        )
        with running_service(
            delay_s=args.delay, config_changes=changes, workers=args.workers
        ) as service:
            fault_free = measure_load(
                service.server_port,
                args.clients,
                args.warmup,
                args.fault_free_minutes * 60,
                critical_path,
            )
            fault_free_time = time_spent(service.server_port, args.delay, skip=args.clients)
        report(fault_free, critical_path, args.fault_free_minutes * 60 + args.warmup)
        report_time_spent(fault_free_time, args.delay)
    faults = Faults(always=(DEAD_MEMBER,), rate=args.failure_rate, seed=1)
    print(
        f"soak: {args.clients} clients for {args.minutes:g} min after {args.warmup:g} s warm-up; "
        f"upstream {args.delay * 1000:.0f} ms per call, critical path {critical_path:.1f} s; "
        f"{DEAD_MEMBER} always fails, {args.failure_rate:.0%} of the other calls fail at random "
        f"(HTTP 500 at once); {args.workers} server process(es); config changes: "
        f"{json.dumps(changes) if changes else 'none'}",
        flush=True,
    )
    with running_service(
        delay_s=args.delay, faults=faults, config_changes=changes, workers=args.workers
    ) as service:
        began, server_cpu, machine_cpu = (
            time.perf_counter(),
            _cpu_s(service.server.pid),
            _machine_busy_s(),
        )
        memory_before = _rss_mb(service.server.pid)
        result = measure_load(
            service.server_port, args.clients, args.warmup, args.minutes * 60, critical_path
        )
        elapsed = time.perf_counter() - began
        server_cpu = _cpu_s(service.server.pid) - server_cpu
        machine_cpu = _machine_busy_s() - machine_cpu
        memory_after = _rss_mb(service.server.pid)
        metrics = _server_text(service.server_port, "/metrics")
        health = json.loads(_server_text(service.server_port, "/health"))
        spent = time_spent(service.server_port, args.delay, skip=args.clients)
    report(result, critical_path, elapsed)
    if fault_free is not None:
        compare(result, fault_free)
    print(
        f"CPU (of one core):     conclave server {server_cpu / elapsed:.0%}, whole machine "
        f"{machine_cpu / elapsed:.0%} (2 cores = 200%; the rest is the upstream, the load "
        "generator and other processes)"
    )
    print(
        f"server memory (RSS):   {memory_before:.0f} MB before the load, "
        f"{memory_after:.0f} MB after"
    )
    report_server(metrics, health)
    report_time_spent(spent, args.delay)


def _rss_mb(pid: int) -> float:
    """Resident memory of the server process (without its workers), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def report(result: LoadResult, critical_path: float, elapsed_s: float) -> None:
    outcomes = result.outcomes
    answered = outcomes.get("ok", 0)
    refused = sum(n for outcome, n in outcomes.items() if outcome.startswith("429"))
    lost = result.total - answered - refused
    latencies = result.latencies
    p50 = statistics.median(latencies) / critical_path if latencies else float("nan")
    p99 = _percentile(latencies, 0.99) / critical_path if latencies else float("nan")
    print(f"requests:              {result.total} in {elapsed_s:.0f} s")
    print(f"answered:              {answered}")
    print(f"early 429:             {refused}")
    print(f"lost:                  {lost}   (bar: 0)")
    print(
        f"502 members answered:  {outcomes.get('502 aggregator_failed', 0)}   (bar: 0; "
        "aggregator_failed: the members had answered)"
    )
    print(f"502 quorum lost:       {outcomes.get('502 quorum_not_reached', 0)}")
    others = {o: n for o, n in outcomes.items() if o not in ("ok", "502 aggregator_failed")}
    others = {o: n for o, n in others.items() if not o.startswith(("429", "502 quorum"))}
    if others:
        print(f"other outcomes:        {others}")
    print(f"p50 / critical path:   {p50:.3f}   (bar: 1.2)")
    print(f"p99 / critical path:   {p99:.3f}   (bar: 1.5)")
    print(f"answers per second:    {result.requests_per_s:.1f}")
    for error in result.errors:
        print(f"  e.g. {error}")


def compare(result: LoadResult, fault_free: LoadResult) -> None:
    """The soak's p50 and p99 as ratios of the fault-free run's at the same load."""
    if not result.latencies or not fault_free.latencies:
        return
    p50 = statistics.median(result.latencies) / statistics.median(fault_free.latencies)
    p99 = _percentile(result.latencies, 0.99) / _percentile(fault_free.latencies, 0.99)
    print(f"p50 / fault-free p50:  {p50:.3f}")
    print(f"p99 / fault-free p99:  {p99:.3f}")


class _KeptRun(BaseModel):
    id: str


class _KeptRuns(BaseModel):
    runs: list[_KeptRun]


@dataclass(frozen=True)
class RunTime:
    """Where one run's time went, in seconds: the engine's whole run, the members' part of its
    rounds (each round until its last member answered, failed or was left behind), the
    aggregator's part (its retries and failed attempts included), and what happened to the
    round's calls."""

    run_s: float
    members_s: float
    aggregator_s: float
    rounds: int
    late_rounds: int
    """Rounds that left a member behind (`late`)."""
    slow_aggregates: int
    """Rounds whose aggregator took over 1.5 times an upstream call (a retry, or load)."""
    fallback_votes: int
    """Rounds whose consensus is the vote of the answers (the aggregator failed)."""


def time_spent(port: int, delay_s: float, *, skip: int, sample: int = 200) -> list[RunTime]:
    """Where the time of `sample` runs kept by the worker that answers went: the newest but
    `skip` (as many as there are clients), which ended while the clients were stopping and the
    load was falling (one connection, so one worker: each keeps its own runs)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        listed = f"/v1/transcripts?limit={sample}&offset={skip}"
        page = _KeptRuns.model_validate_json(_get(connection, listed))
        kept = (_get(connection, f"/v1/transcripts/{run.id}") for run in page.runs)
        return [run_time(Transcript.model_validate_json(text), delay_s) for text in kept]
    finally:
        connection.close()


def _get(connection: http.client.HTTPConnection, path: str) -> bytes:
    connection.request("GET", path)
    return connection.getresponse().read()


def run_time(transcript: Transcript, delay_s: float) -> RunTime:
    """Where one run's time went, the upstream answering each call after `delay_s`."""
    members_s = aggregator_s = 0.0
    late = slow = votes = 0
    for record in transcript.rounds:
        tries = [c for c in record.other_calls if c.role == "member"]
        members_s += max((c.latency_s for c in record.responses), default=0.0)
        members_s += max((c.latency_s for c in tries), default=0.0)
        attempts = [c for c in record.other_calls if c.role == "aggregator"]
        if record.aggregate is not None and record.aggregate.role == "aggregator":
            attempts.append(record.aggregate)
        spent = sum(c.latency_s for c in attempts)
        aggregator_s += spent
        late += int(any(c.error is not None and c.error.type == "late" for c in record.responses))
        slow += int(spent > 1.5 * delay_s)
        votes += int(record.decided_by == "fallback_vote")
    return RunTime(
        transcript.duration_s, members_s, aggregator_s, len(transcript.rounds), late, slow, votes
    )


def report_time_spent(runs: list[RunTime], delay_s: float) -> None:
    """Median and p99 of each part of a run, against the upstream's own time for it."""
    if not runs:
        return
    rounds = sum(run.rounds for run in runs)
    upstream_s = delay_s * rounds / len(runs)
    print(
        f"where the time went ({len(runs)} runs of one worker, {rounds / len(runs):.1f} rounds "
        f"each; the upstream's own time is {upstream_s:.2f} s for the members and the same "
        "for the aggregator):"
    )
    parts = {
        "engine, whole run": [run.run_s for run in runs],
        "members' part": [run.members_s for run in runs],
        "aggregator's part": [run.aggregator_s for run in runs],
        "between the calls": [run.run_s - run.members_s - run.aggregator_s for run in runs],
    }
    for name, values in parts.items():
        print(
            f"  {name:<18} p50 {statistics.median(values):.3f} s, "
            f"p99 {_percentile(values, 0.99):.3f} s, mean {statistics.mean(values):.3f} s"
        )
    print(
        f"  rounds that left a member behind: {sum(r.late_rounds for r in runs)} of {rounds}; "
        f"aggregator slower than 1.5 calls: {sum(r.slow_aggregates for r in runs)}; "
        f"consensus by fallback vote: {sum(r.fallback_votes for r in runs)}"
    )


def report_server(metrics: str, health: dict[str, object]) -> None:
    """The server's own count of failed calls by model and type, and the breakers."""
    failures: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("conclave_model_call_failures_total{"):
            labels, value = line.rsplit(" ", 1)
            fields = dict(
                part.split("=", 1) for part in labels[labels.index("{") + 1 : -1].split(",")
            )
            key = f"{fields['model'].strip(chr(34))} {fields['type'].strip(chr(34))}"
            failures[key] = failures.get(key, 0) + float(value)
    print("failed calls (server):", ", ".join(f"{k}: {v:.0f}" for k, v in sorted(failures.items())))
    breakers = health.get("breakers")
    if isinstance(breakers, dict):
        for preset, by_role in breakers.items():
            if isinstance(by_role, dict):
                statuses = [*by_role.get("members", ()), by_role.get("aggregator")]
                shown = [
                    f"{s['member'].split(' at ')[0]} {s['state']} (opened {s['times_opened']}x)"
                    for s in statuses
                    if isinstance(s, dict)
                ]
                print(f"breakers ({preset}):", ", ".join(shown))


if __name__ == "__main__":
    main()
