"""What keeping a run costs the process that made it: CPU milliseconds per run written by the
run store's background writer, one run per transaction vs gathered into batches, on SQLite
(or the database CONCLAVE_STORE_URL names).

    .venv/bin/python benchmarks/store_writes.py
    .venv/bin/python benchmarks/store_writes.py --runs 2000

The transcripts are real (the engine on the shipped fakes: 3 members and an aggregator, two
rounds, as in benchmarks/service_throughput.py). Compare the CPU per run with the server's
CPU per request there (about 12 upstream calls x ~1 CPU ms).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from conclave.config import ConsensusConfig
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.panel import build_panel
from conclave.consensus.transcript import Transcript
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.store import StoreSettings, open_run_store
from conclave.types import Message

ANSWER = "The capital of France is Paris, a city on the Seine known for its museums."


async def transcript() -> Transcript:
    fakes: dict[str, FakeModel | FunctionModel] = {
        name: FakeModel(default=ANSWER) for name in ("m1", "m2", "m3", "agg")
    }
    config = ConsensusConfig.model_validate(
        {
            "models": [{"id": name} for name in ("m1", "m2", "m3")],
            "aggregator": [{"model": {"id": "agg"}}],
            "iterations": 2,
        }
    )
    registry = ProviderRegistry(overrides={"openrouter": FakeProvider(fakes)})
    engine = ConsensusEngine(config, build_panel(config, registry))
    question = Message(role="user", content="What is the capital of France? Say why.")
    return await engine.run_to_end([question])


def cpu_ms_per_run(made: list[Transcript], url: str, *, flush_each: bool) -> float:
    with tempfile.TemporaryDirectory() as home:
        settings = StoreSettings(url=url or f"sqlite:///{home}/runs.db", _env_file=None)
        store = open_run_store(home=Path(home), settings=settings)
        began = time.process_time()
        for one in made:
            store.record(one, preset="bench")
            if flush_each:
                store.flush()
        store.flush()
        spent = time.process_time() - began
        store.close()
    return spent * 1000 / len(made)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--url", default="", help="a database URL (default: a fresh SQLite)")
    args = parser.parse_args()
    base = asyncio.run(transcript())
    made = [base.model_copy(update={"id": f"run-{n}"}) for n in range(args.runs)]
    print(f"{args.runs} runs of {len(base.to_json(indent=None))} bytes of transcript JSON")
    one = cpu_ms_per_run(made, args.url, flush_each=True)
    batched = cpu_ms_per_run(made, args.url, flush_each=False)
    print(f"one run per transaction: {one:.3f} CPU ms per run")
    print(f"batched:                 {batched:.3f} CPU ms per run ({batched / one:.2f}x)")


if __name__ == "__main__":
    main()
