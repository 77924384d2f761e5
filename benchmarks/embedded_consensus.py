"""Time of one real consensus on the embedded models (the default `conclave ask` panel).

Prints, per prompt: time to the first consensus (end of round 0), total time, and per call
the model, tokens and seconds. The models are loaded before timing starts, as in a warm server;
the cold load is printed separately.

    .venv/bin/python benchmarks/embedded_consensus.py
"""

from __future__ import annotations

import asyncio
import time

from conclave.consensus.events import ConsensusDone, RoundFinished
from conclave.presets import embedded_config
from conclave.session import Consensus
from conclave.types import Message, SamplingOptions

PROMPTS = (
    "What is 17 + 25?",
    "Why is the sky blue? Answer in two sentences.",
    "Name three uses of a hash table.",
)


async def main() -> None:
    config = embedded_config()
    async with Consensus(config) as consensus:
        started = time.perf_counter()
        for member in {m.spec.model_name: m for m in consensus.panel.members}.values():
            await member.provider.complete(
                member.spec.model_name,
                [Message(role="user", content="hi")],
                SamplingOptions(max_tokens=1),
            )
        print(f"cold load of the embedded models: {time.perf_counter() - started:.1f} s")
        print(
            f"panel: {', '.join(m.id for m in config.models)}; "
            f"aggregator {config.aggregator_spec.model.id}; "
            f"{config.iterations} improvement round(s)"
        )
        for prompt in PROMPTS:
            started = time.perf_counter()
            first_consensus = None
            async for event in consensus.events(prompt):
                if isinstance(event, RoundFinished) and first_consensus is None:
                    first_consensus = time.perf_counter() - started
                if isinstance(event, ConsensusDone):
                    transcript = event.transcript
            total = time.perf_counter() - started
            print(f"\n{prompt!r}: first consensus {first_consensus:.1f} s, total {total:.1f} s")
            for round_ in transcript.rounds:
                calls = [*round_.responses, *([round_.aggregate] if round_.aggregate else [])]
                for call in calls:
                    print(
                        f"  round {round_.index}  {call.model:<38} "
                        f"{call.usage.completion_tokens:>4} tokens  {call.latency_s:5.1f} s"
                        f"{'  (truncated)' if call.truncated else ''}"
                    )
            print(f"  answer: {' '.join(transcript.answer.split())[:160]}")


if __name__ == "__main__":
    asyncio.run(main())
