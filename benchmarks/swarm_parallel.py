"""A swarm's steps at once against the same steps one after another, on the embedded models.

For each composite question the embedded swarm (`conclave ask --strategy swarm`'s, with no
config) runs twice, each time on fresh providers whose models are loaded before timing, so
that neither run reads prompt states the other left: once with its steps at once
(`max_parallel` 4), once one after another (`max_parallel` 1); which goes first alternates.
The orchestrator plans at temperature 0, so both runs plan the same steps (a question whose
two plans differ is left out of the sums and says so).

Printed per question: the plan (agent and dependencies of each step), each run's steps wall
time (from the first step's start to the last step's end) and their ratio; then the totals
over the questions whose plan had steps that could run at once. Beside them, the plan's own
bound: the longest chain of dependent steps, timed in the run one after another, over all its
steps there. Steps at once can come no lower than that, whatever the cores: a long step that
no other step runs beside is waited for whole.

    nice -n 10 .venv/bin/python benchmarks/swarm_parallel.py \\
        data/devsets/composite/test.jsonl --limit 10 --replicas 2

`--replicas` is CONCLAVE_LOCAL_REPLICAS: instances of one model that may answer at once. The
embedded agents all run on Qwen2.5-1.5B, so with one instance its steps queue for it and run
one after another whatever the plan allows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from conclave.consensus.strategies.swarm import swarm_report
from conclave.consensus.swarm_report import SwarmReport
from conclave.evaluation.dataset import load_dataset
from conclave.presets import embedded_config
from conclave.providers.local import LocalProvider
from conclave.providers.registry import ProviderRegistry
from conclave.session import Consensus
from conclave.settings import Settings
from conclave.types import Message, SamplingOptions

PARALLEL = 4
MODEL = "qwen2.5-1.5b"


@dataclass(frozen=True)
class Timed:
    report: SwarmReport
    wall_s: float
    tokens: int


async def run_once(prompt: str, max_parallel: int, replicas: int) -> Timed:
    """One swarm run on fresh providers, its model instances loaded first."""
    settings = Settings()
    local = LocalProvider(
        models_dir=settings.models_dir,
        n_threads=settings.threads,
        fit_to_load="threads" not in settings.model_fields_set,
        replicas=replicas,
    )
    registry = ProviderRegistry(settings, overrides={"local": local})
    warm = [Message(role="user", content="hi")]
    await asyncio.gather(
        *(local.complete(MODEL, warm, SamplingOptions(max_tokens=1)) for _ in range(replicas))
    )
    config = embedded_config().with_changes(
        strategy="swarm", strategy_options={"max_parallel": max_parallel}
    )
    try:
        started = time.perf_counter()
        transcript = await Consensus(config, registry=registry).ask(prompt)
        wall_s = time.perf_counter() - started
    finally:
        await registry.aclose()
    report = swarm_report(transcript)
    assert report is not None
    return Timed(report, wall_s, transcript.usage.total_tokens)


def critical_path_s(report: SwarmReport) -> float:
    """The longest chain of dependent steps, each step taking the time it took in `report`."""
    took = {r.step.id: r.finished_s - r.started_s for r in report.steps}
    until: dict[int, float] = {}
    for step in report.plan.plan.steps:  # a step depends only on steps before it
        until[step.id] = took[step.id] + max((until[d] for d in step.depends_on), default=0.0)
    return max(until.values(), default=0.0)


def plan_line(report: SwarmReport) -> str:
    steps = report.plan.plan.steps
    return ", ".join(
        f"{s.id}:{s.agent}" + (f"<-{'+'.join(map(str, s.depends_on))}" if s.depends_on else "")
        for s in steps
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    rows = load_dataset(args.data, limit=args.limit).rows
    print(
        f"{len(rows)} questions of {args.data}; replicas {args.replicas}; "
        f"threads {Settings().threads}; niceness {os.getpriority(os.PRIO_PROCESS, 0)}"
    )
    sums = {"parallel": 0.0, "one after another": 0.0, "critical path": 0.0}
    counted = 0
    for index, row in enumerate(rows):
        order = [PARALLEL, 1] if index % 2 == 0 else [1, PARALLEL]
        timed = {n: await run_once(row.prompt(), n, args.replicas) for n in order}
        together, alone = timed[PARALLEL], timed[1]
        same_plan = together.report.plan.plan == alone.report.plan.plan
        can_overlap = together.report.plan.plan.depth < len(together.report.plan.plan.steps)
        ratio = together.report.steps_wall_s / max(alone.report.steps_wall_s, 1e-9)
        critical = critical_path_s(alone.report)
        bound = critical / max(alone.report.steps_wall_s, 1e-9)
        note = "" if same_plan else "  (plans differ: left out)"
        if same_plan and can_overlap:
            sums["parallel"] += together.report.steps_wall_s
            sums["one after another"] += alone.report.steps_wall_s
            sums["critical path"] += critical
            counted += 1
        elif same_plan:
            note = "  (no two steps could run at once: left out)"
        print(
            f"{row.id}: plan {plan_line(together.report)}; steps at once "
            f"{together.report.steps_wall_s:.1f} s, one after another "
            f"{alone.report.steps_wall_s:.1f} s, ratio {ratio:.2f} (bound {bound:.2f}); whole runs "
            f"{together.wall_s:.1f} s / {alone.wall_s:.1f} s{note}",
            flush=True,
        )
    if counted:
        total = sums["parallel"] / sums["one after another"]
        bound_total = sums["critical path"] / sums["one after another"]
        print(
            f"\n{counted} questions with steps that could run at once: steps at once "
            f"{sums['parallel']:.1f} s, one after another {sums['one after another']:.1f} s, "
            f"ratio {total:.2f}; the plans' bound {bound_total:.2f} (their critical paths "
            f"{sums['critical path']:.1f} s)"
        )


if __name__ == "__main__":
    asyncio.run(main())
