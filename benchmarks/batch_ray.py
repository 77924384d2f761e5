"""`conclave batch` throughput: rows per second on Ray with 1, 2 and 4 actors, and the local
run beside them, over the same rows and the same members.

The members are the scripted OpenAI-compatible upstream (tests/batch/upstream.py) in a process
of its own on 127.0.0.1: each call takes `--delay` seconds, so a row (two members, then the
aggregator) takes at least twice that; this measures the runners, not a model. With
`--embedded`, the members are the embedded llama.cpp models instead (CPU-bound: then actors
compete for this machine's cores).

    .venv/bin/python benchmarks/batch_ray.py [--rows 200] [--delay 0.05] [--concurrency 4]
    .venv/bin/python benchmarks/batch_ray.py --embedded --rows 8 --concurrency 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import ray

from conclave.batch import JobRunSummary, RayOptions, run_consensus_batch
from conclave.config import ConsensusConfig
from conclave.presets import embedded_config
from conclave.session import Consensus

UPSTREAM = Path(__file__).resolve().parents[1] / "tests" / "batch" / "upstream.py"
ACTOR_COUNTS = (1, 2, 4)


def scripted_config(port: int) -> ConsensusConfig:
    url = f"http://127.0.0.1:{port}/v1"
    return ConsensusConfig.model_validate(
        {
            "models": [{"id": f"scripted-{n}", "base_url": url} for n in range(2)],
            "aggregator": [{"model": {"id": "scripted-aggregator", "base_url": url}}],
            "iterations": 0,
        }
    )


def write_rows(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            prompt = f"Question Q-{n}: what is {n} + {n}? Answer with the number."
            out.write(json.dumps({"prompt": prompt, "id": n}) + "\n")
    return path


def line(label: str, in_flight: int, summary: JobRunSummary, wall_s: float) -> None:
    startup = wall_s - summary.elapsed_s
    print(
        f"{label:<16} {in_flight:>9}   {summary.finished:>4} rows  {summary.failed:>3} failed  "
        f"{summary.elapsed_s:7.2f} s  {summary.jobs_per_s:8.2f} rows/s  "
        f"(+{startup:.1f} s start-up)",
        flush=True,
    )


async def measure(
    rows: Path, work: Path, config: ConsensusConfig, concurrency: int, actor_cpus: float
) -> None:
    factory = partial(Consensus, config)
    print(
        f"{'runner':<16} {'in flight':>9}   {'rows':>9}  {'failed':>10}  {'time':>9}  {'rate':>15}",
        flush=True,
    )
    for in_flight in (concurrency, concurrency * max(ACTOR_COUNTS)):
        started = time.perf_counter()
        summary = await run_consensus_batch(
            rows, work / f"local-{in_flight}.jsonl", factory, concurrency=in_flight
        )
        line("local", in_flight, summary, time.perf_counter() - started)
    for actors in ACTOR_COUNTS:
        started = time.perf_counter()
        summary = await run_consensus_batch(
            rows,
            work / f"ray-{actors}.jsonl",
            factory,
            concurrency=concurrency,
            ray=RayOptions(actors=actors, actor_cpus=actor_cpus),
        )
        line(
            f"ray, {actors} actor(s)", actors * concurrency, summary, time.perf_counter() - started
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds per scripted call")
    parser.add_argument("--concurrency", type=int, default=4, help="rows in flight per runner")
    parser.add_argument("--embedded", action="store_true", help="the embedded models instead")
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    # Logical CPUs for Ray: enough for 4 actors of one CPU each whatever the machine has.
    ray.init(
        address="local",
        num_cpus=max(cores, max(ACTOR_COUNTS)),
        include_dashboard=False,
        log_to_driver=False,
    )
    with tempfile.TemporaryDirectory(prefix="conclave-batch-bench-") as temp:
        work = Path(temp)
        rows = write_rows(work / "in.jsonl", args.rows)
        if args.embedded:
            config = embedded_config().with_changes(iterations=0)
            print(f"{args.rows} rows, embedded models, {cores} cores", flush=True)
            asyncio.run(measure(rows, work, config, args.concurrency, actor_cpus=1.0))
        else:
            upstream = subprocess.Popen(
                [sys.executable, str(UPSTREAM), str(args.delay)],
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert upstream.stdout is not None
                port = int(upstream.stdout.readline())
                print(
                    f"{args.rows} rows, scripted members over HTTP ({args.delay * 1000:.0f} ms a "
                    f"call, 3 calls a row), {cores} cores",
                    flush=True,
                )
                asyncio.run(
                    measure(rows, work, scripted_config(port), args.concurrency, actor_cpus=1.0)
                )
            finally:
                upstream.kill()
                upstream.wait()
    ray.shutdown()


if __name__ == "__main__":
    main()
