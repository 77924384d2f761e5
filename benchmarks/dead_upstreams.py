"""Dead upstreams: what a request costs while the aggregator, or every member, is down.

A simulated OpenAI-compatible upstream on 127.0.0.1 (that of benchmarks/service_throughput.py:
every call answers after `--delay` seconds, and the models it is told to fail answer HTTP 500
at once) serves a panel of 3 members and an aggregator, reached through the real
OpenAICompatibleProvider and openai SDK, one `Consensus`, no improvement round; requests are
sent one after another. Three upstreams, one per scenario:

- healthy: the critical path (a member's answer, then the aggregator's: 2 x `--delay`);
- dead aggregator: each request's latency, and the median of those after its breaker opened,
  as a ratio of the healthy median;
- every member dead: how long the error takes once the members' breakers are open, and
  whether it says that retrying is pointless.

    .venv/bin/python benchmarks/dead_upstreams.py
    .venv/bin/python benchmarks/dead_upstreams.py --requests 20 --delay 0.2
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time

from conclave.config import ConsensusConfig
from conclave.errors import ConsensusError
from conclave.providers.registry import ProviderRegistry
from conclave.session import Consensus
from conclave.settings import Settings
from service_throughput import HOST, MEMBERS, Faults, run_upstream

QUESTION = "What is the capital of France?"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _config(port: int) -> ConsensusConfig:
    url = f"http://{HOST}:{port}/v1"
    return ConsensusConfig.model_validate(
        {
            "models": [{"id": name, "base_url": url, "max_tokens": 64} for name in MEMBERS],
            "aggregator": [{"model": {"id": "agg", "base_url": url, "max_tokens": 64}}],
            "iterations": 0,
            "timeout_s": 30,
        }
    )


async def _latencies(faults: Faults, delay_s: float, requests: int) -> list[tuple[float, str]]:
    """(seconds, outcome) of each request, in order: the round's `decided_by`, or the error."""
    port = _free_port()
    upstream = asyncio.create_task(run_upstream(port, delay_s, faults))
    await asyncio.sleep(0.1)
    results: list[tuple[float, str]] = []
    registry = ProviderRegistry(Settings(_env_file=None))
    try:
        consensus = Consensus(_config(port), registry=registry)
        for _ in range(requests):
            started = time.perf_counter()
            try:
                transcript = await consensus.ask(QUESTION)
                outcome: str = transcript.rounds[-1].decided_by
            except ConsensusError as exc:
                retryable = getattr(exc, "retryable", None)
                outcome = f"error (retryable: {retryable})"
            results.append((time.perf_counter() - started, outcome))
    finally:
        await registry.aclose()
        upstream.cancel()
    return results


def _show(name: str, results: list[tuple[float, str]], settled_after: int, base_s: float) -> None:
    print(f"\n{name}")
    for number, (seconds, outcome) in enumerate(results, start=1):
        print(f"  request {number:2d}: {seconds:6.3f} s  {outcome}")
    settled = [seconds for seconds, _ in results[settled_after:]]
    median = statistics.median(settled)
    print(
        f"  median from request {settled_after + 1}: {median:.3f} s "
        f"= {median / base_s:.2f} x the healthy median"
    )


async def _main(requests: int, delay_s: float) -> None:
    healthy = await _latencies(Faults(), delay_s, requests)
    base_s = statistics.median(seconds for seconds, _ in healthy)
    print(f"healthy: median {base_s:.3f} s (critical path {2 * delay_s:.3f} s)")
    breaker_failures = ConsensusConfig.model_fields["breaker_failures"].default
    dead_aggregator = await _latencies(Faults(always=("agg",)), delay_s, requests)
    _show("dead aggregator", dead_aggregator, breaker_failures, base_s)
    dead_members = await _latencies(Faults(always=MEMBERS), delay_s, requests)
    _show("every member dead", dead_members, breaker_failures, base_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=12, help="requests per scenario")
    parser.add_argument("--delay", type=float, default=0.4, help="seconds per upstream call")
    args = parser.parse_args()
    asyncio.run(_main(args.requests, args.delay))


if __name__ == "__main__":
    main()
