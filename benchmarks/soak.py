"""Soak: `conclave serve` under 200 clients for minutes, while its upstream fails.

The set-up of benchmarks/service_throughput.py (a simulated OpenAI-compatible upstream on
127.0.0.1 answering after `--delay` seconds, real uvicorn serving conclave with 3 members, an
aggregator and 2 improvement rounds, a closed-loop load generator), with faults injected
upstream: one member (`m3`) always answers HTTP 500, and `--failure-rate` of all other calls
(members and aggregator) answer HTTP 500 at random.

Printed: requests lost (neither an answer nor an early 429: must be 0), 502s although members
had answered (`aggregator_failed`), p50 and p99 latency as ratios of the critical path (bars:
1.2 and 1.5), throughput, and what the server counted: failed member calls by type (`late`:
a straggler the round stopped waiting for; `cooldown`: a resting member skipped) and the
members' breakers.

    .venv/bin/python benchmarks/soak.py                 # 10 minutes
    .venv/bin/python benchmarks/soak.py --minutes 2 --workers 2
    .venv/bin/python benchmarks/soak.py --minutes 2 --grace-floor 0.1 --straggler-factor 1.2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from service_throughput import (
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
    report(result, critical_path, elapsed)
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
    members = health.get("members")
    if isinstance(members, dict):
        for preset, statuses in members.items():
            if isinstance(statuses, list):
                shown = [
                    f"{s['member'].split(' at ')[0]} {s['state']} (opened {s['times_opened']}x)"
                    for s in statuses
                    if isinstance(s, dict)
                ]
                print(f"breakers ({preset}):", ", ".join(shown))


if __name__ == "__main__":
    main()
