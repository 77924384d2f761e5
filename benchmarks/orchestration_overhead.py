"""Orchestration overhead: total run time divided by the slowest-member critical path.

Fake members answer after a fixed latency, so the ideal run time is known exactly:
per round, the slowest member plus the aggregator. A ratio of 1.00 means the engine adds nothing.

    .venv/bin/python benchmarks/orchestration_overhead.py
"""

from __future__ import annotations

import asyncio
import statistics
import time

from conclave.config import ConsensusConfig
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.panel import build_panel
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.types import Message

QUESTION = (Message(role="user", content="What is 17 + 25?"),)


async def one_case(member_latencies: list[float], aggregator_s: float, iterations: int) -> None:
    names = [f"m{i}" for i in range(len(member_latencies))]
    fakes: dict[str, FakeModel | FunctionModel] = {
        name: FakeModel(default="17 + 25 = 42", latency_s=latency)
        for name, latency in zip(names, member_latencies, strict=True)
    }
    fakes["agg"] = FakeModel(default="42", latency_s=aggregator_s)
    config = ConsensusConfig.model_validate(
        {
            "models": [{"id": name} for name in names],
            "aggregator": [{"model": {"id": "agg"}}],
            "iterations": iterations,
        }
    )
    engine = ConsensusEngine(
        config, build_panel(config, ProviderRegistry(overrides={"openrouter": FakeProvider(fakes)}))
    )
    critical_path = (max(member_latencies) + aggregator_s) * (iterations + 1)
    ratios = []
    cpu_ms = []
    for _ in range(5):
        wall, cpu = time.perf_counter(), time.process_time()
        await engine.run_to_end(QUESTION)
        ratios.append((time.perf_counter() - wall) / critical_path)
        cpu_ms.append((time.process_time() - cpu) * 1000)
    calls = (len(names) + 1) * (iterations + 1)
    print(
        f"{len(names):>4} members  {iterations} improvement rounds  "
        f"critical path {critical_path:5.2f} s  "
        f"total/critical median {statistics.median(ratios):.3f} (worst {max(ratios):.3f})  "
        f"engine CPU {statistics.median(cpu_ms) / calls:.3f} ms per call"
    )


async def main() -> None:
    print("orchestration overhead (fake members of fixed latency; 1.000 = no overhead)")
    await one_case([0.10, 0.20, 0.30], aggregator_s=0.15, iterations=2)
    await one_case([0.05] * 10 + [0.25], aggregator_s=0.10, iterations=2)
    await one_case([0.05 + i * 0.001 for i in range(100)], aggregator_s=0.10, iterations=1)


if __name__ == "__main__":
    asyncio.run(main())
