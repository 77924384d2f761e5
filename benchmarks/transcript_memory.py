"""What one kept transcript costs, for long prompts: bytes of its JSON form (what a store and
a receipt hash hold), copies of the prompt in that JSON, Python heap held per run
(tracemalloc) and the process's resident memory, through the real app (its own in-memory
store, with its default count and byte budget) and the shipped fakes as members.

    PYTHONPATH=src .venv/bin/python benchmarks/transcript_memory.py [runs] [prompt_chars]
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tracemalloc

import httpx2

from conclave.config import ConsensusConfig
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.server import MemoryTranscriptStore, ServerSettings, create_app


async def main(runs: int, prompt_chars: int) -> None:
    config = ConsensusConfig.model_validate(
        {
            "name": "panel",
            "models": [{"id": name} for name in ("a", "b", "c")],
            "aggregator": [{"model": {"id": "agg"}}],
            "iterations": 1,
        }
    )
    fakes: dict[str, FakeModel | FunctionModel] = {
        name: FakeModel(default=f"{name} says: a short answer.") for name in ("a", "b", "c", "agg")
    }
    app = create_app(
        [(config.name, config)],
        settings=ServerSettings(_env_file=None, max_prompt_chars=prompt_chars + 10),
        registry=ProviderRegistry(overrides={"openrouter": FakeProvider(fakes)}),
    )
    store = app.state.service.store
    assert isinstance(store, MemoryTranscriptStore)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://conclave") as client:
        gc.collect()
        rss_before = resident_bytes()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        ids: list[str] = []
        for run in range(runs):
            prompt = f"{run:06d} " + "x" * prompt_chars
            body = {"model": "default", "messages": [{"role": "user", "content": prompt}]}
            response = await client.post("/v1/chat/completions", json=body)
            response.raise_for_status()
            ids.append(response.json()["conclave"]["transcript_id"])
            for fake in fakes.values():
                fake.history.clear()  # the fakes' own record of calls is not the server's
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        rss_growth = resident_bytes() - rss_before
    print(f"runs: {runs}, kept: {len(store)}, text kept: {store.bytes_kept:,} bytes")
    print(f"heap held: {held:,} bytes; resident memory grew by {rss_growth:,} bytes")
    transcript = await store.get(ids[-1])
    assert transcript is not None
    text = transcript.to_json(indent=None)
    copies = text.count("x" * prompt_chars)
    per_run = held / len(store)
    print(f"prompt: {prompt_chars:,} characters")
    print(f"transcript JSON: {len(text):,} bytes, {copies} copies of the prompt")
    print(f"heap per kept run: {per_run:,.0f} bytes, {per_run / prompt_chars:.2f}x the prompt")


def resident_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


if __name__ == "__main__":
    args = [int(arg) for arg in sys.argv[1:]]
    asyncio.run(main(*(args or [50, 99_000])))
