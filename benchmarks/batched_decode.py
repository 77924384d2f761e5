"""Two generations of one embedded model at once, three ways, on this machine's cores.

A swarm's steps that run at once on the embedded models are generations of the same model
(every embedded agent answers first with Qwen2.5-1.5B). A generation makes one token at a
time, and every token reads the whole model, so how much running them at once gains on a CPU
depends on how they share the cores and the model's weights. Timed here, with llama.cpp's own
decode calls (no sampling, no conclave code), for two sequences of `--tokens` tokens each after
a short prompt:

1. one after another, each on all `--threads` threads (the swarm's `max_parallel` 1);
2. side by side, two contexts each on its share of the threads, in two threads of this process
   (what CONCLAVE_LOCAL_REPLICAS=2 does with the provider's thread budget split);
3. in one batch on one context: each decode makes a token of both sequences, reading the
   weights once for both (what llama.cpp's server does with parallel slots; conclave's
   embedded provider does not).

Printed: the seconds of each way (the best of `--repeats`, the ways interleaved so that load
on a shared machine hits them alike) and its ratio to the first.

    PYTHONPATH=src .venv/bin/python benchmarks/batched_decode.py --tokens 96 --repeats 3
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from typing import Any

import llama_cpp
from llama_cpp._logger import set_verbose

from conclave.providers.packs import get_pack, resolve_pack
from conclave.settings import Settings

PROMPT_TOKENS = 24
TOKEN = 1000
"""Every sequence is fed this token: timing does not depend on which token it is."""


def new_context(model: Any, threads: int, sequences: int) -> Any:
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = 1024
    params.n_batch = 512
    params.n_seq_max = sequences
    params.n_threads = threads
    params.n_threads_batch = threads
    return llama_cpp.llama_init_from_model(model, params)


def decode(context: Any, sequences: int, tokens: int) -> None:
    """A prompt for each sequence, then `tokens` decodes of one token per sequence."""
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(context), True)
    batch = llama_cpp.llama_batch_init(PROMPT_TOKENS * sequences, 0, sequences)
    try:

        def put(index: int, position: int, sequence: int, logits: bool) -> None:
            batch.token[index] = TOKEN
            batch.pos[index] = position
            batch.n_seq_id[index] = 1
            batch.seq_id[index][0] = sequence
            batch.logits[index] = logits

        batch.n_tokens = PROMPT_TOKENS * sequences
        for sequence in range(sequences):
            for position in range(PROMPT_TOKENS):
                index = sequence * PROMPT_TOKENS + position
                put(index, position, sequence, position == PROMPT_TOKENS - 1)
        check(llama_cpp.llama_decode(context, batch))
        for step in range(tokens):
            batch.n_tokens = sequences
            for sequence in range(sequences):
                put(sequence, PROMPT_TOKENS + step, sequence, True)
            check(llama_cpp.llama_decode(context, batch))
    finally:
        llama_cpp.llama_batch_free(batch)


def check(code: int) -> None:
    if code != 0:
        raise RuntimeError(f"llama_decode returned {code}")


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", default="qwen2.5-1.5b")
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=Settings().threads)
    args = parser.parse_args()
    settings = Settings()
    path = resolve_pack(get_pack(args.pack), settings.models_dir)
    set_verbose(False)  # llama.cpp's loading messages
    llama_cpp.llama_backend_init()
    model_params = llama_cpp.llama_model_default_params()
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), model_params)
    share = max(1, args.threads // 2)
    whole = new_context(model, args.threads, 1)
    halves = [new_context(model, share, 1) for _ in range(2)]
    batched = new_context(model, args.threads, 2)

    def one_after_another() -> None:
        decode(whole, 1, args.tokens)
        decode(whole, 1, args.tokens)

    def side_by_side() -> None:
        workers = [
            threading.Thread(target=decode, args=(context, 1, args.tokens)) for context in halves
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def in_one_batch() -> None:
        decode(batched, 2, args.tokens)

    ways = {
        f"one after another, {args.threads} threads": one_after_another,
        f"side by side, two contexts of {share} thread{'s' if share > 1 else ''}": side_by_side,
        f"in one batch, {args.threads} threads": in_one_batch,
    }
    best = {name: float("inf") for name in ways}
    for repeat in range(args.repeats + 1):  # the first is a warm-up: weights paged in
        for name, run in ways.items():
            seconds = timed(run)
            if repeat:
                best[name] = min(best[name], seconds)
    print(f"{args.pack}: two sequences of {args.tokens} tokens after {PROMPT_TOKENS} prompt tokens")
    first = next(iter(best.values()))
    for name, seconds in best.items():
        print(f"  {name:45} {seconds:6.2f} s  {seconds / first:.2f}x")
    for context in (whole, *halves, batched):
        llama_cpp.llama_free(context)
    llama_cpp.llama_model_free(model)


if __name__ == "__main__":
    main()
