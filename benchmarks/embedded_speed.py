"""How close conclave's embedded models run to llama.cpp's own speed (issue 11).

Prints, measured in one run so that machine load hits both sides alike (the two sides
interleaved, best of N after a warm-up):

1. per pack: generation tokens/s through conclave's LocalProvider beside raw llama-cpp-python
   (same GGUF, same threads, same n_ctx, greedy, 128 tokens);
2. a round of two local members (the default panel: SmolLM2-135M and Qwen2.5-0.5B) run in
   parallel, against the same two calls back to back;
3. a real consensus on the default panel, greedy (Qwen2.5-0.5B is member and aggregator, so it
   alternates between two prompts): prompt tokens processed and the seconds spent on them,
   round 1 against round 2, with the prompt state cache and without it;
4. whole process: `conclave complete --model local:qwen2.5-0.5b --max-tokens 400
   --temperature 0` against a five-line llama-cpp-python script.

    PYTHONPATH=src .venv/bin/python benchmarks/embedded_speed.py
    PYTHONPATH=src .venv/bin/python benchmarks/embedded_speed.py --only generation --repeats 5
    PYTHONPATH=src .venv/bin/python benchmarks/embedded_speed.py --only process --load 2

Packs that are not installed are listed and skipped. `--threads` defaults to conclave's own
budget (CONCLAVE_THREADS, else the CPU count). `--load N` runs N busy loops in other processes
(at `--load-nice`) during the measurement, to show what load does to each side. OpenMP's wait
policy is left as the environment has it, for both sides (libgomp's default: spinning).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from conclave.config import ConsensusConfig
from conclave.consensus.transcript import Transcript
from conclave.presets import embedded_config
from conclave.providers.local import LocalCallStats, LocalProvider
from conclave.providers.packs import PACKS, pack_status, resolve_pack
from conclave.providers.registry import ProviderRegistry
from conclave.session import Consensus
from conclave.settings import Settings
from conclave.types import Message, SamplingOptions

SECTIONS = ("threads", "generation", "round", "states", "process")
ESSAY = [
    Message(
        role="user",
        content="Write a long essay on the history of Rome, from its founding to the fall of "
        "the West.",
    )
]
GENERATION_TOKENS = 128
MEMBERS = ("smollm2-135m", "qwen2.5-0.5b")
PROCESS_MODEL = "qwen2.5-0.5b"
PROCESS_PROMPT = "Explain how a hash table works, with a short example in Python."
PROCESS_TOKENS = 400
PASSAGE = (
    "Read the passage, then answer the question.\n\n"
    + (
        "The Antikythera mechanism is an ancient Greek hand-powered orrery, described as the "
        "oldest known example of an analogue computer. It was used to predict astronomical "
        "positions and eclipses decades in advance, and to track the four-year cycle of "
        "athletic games similar to an olympiad. The artefact was among wreckage retrieved "
        "from a shipwreck off the coast of the Greek island Antikythera in 1901. "
    )
    * 2
    + "\n\nQuestion: what was the mechanism used for? Answer in two sentences."
)
CONSENSUS_PROMPTS = ("What is 17 + 25?", PASSAGE)

RAW_SCRIPT = """\
import sys, llama_cpp
a = sys.argv; t = int(a[3])
llm = llama_cpp.Llama(a[1], n_ctx=int(a[2]), n_threads=t, n_threads_batch=t, verbose=False)
messages = [{"role": "user", "content": a[4]}]
for c in llm.create_chat_completion(messages, max_tokens=int(a[5]), temperature=0, stream=True):
    print(c["choices"][0]["delta"].get("content") or "", end="", flush=True)
print()
"""


@dataclass(frozen=True)
class Options:
    packs: tuple[str, ...]
    threads: int
    repeats: int
    n_ctx: int
    models_dir: Path
    fit_to_load: bool
    """Conclave's default unless `--threads` or CONCLAVE_THREADS fixes the count."""
    process_limit_s: float
    """Section 4 stops a process that runs longer (spinning threads under load collapse)."""


@dataclass(frozen=True)
class Sample:
    seconds: float
    tokens: int = 0
    stopped: bool = False
    """Stopped at a time limit: `seconds` is the limit, not the time it needed."""

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def best_of(repeats: int, *runs: Callable[[], Sample]) -> list[Sample]:
    """Each run once to warm up, then `repeats` times, interleaved; the fastest of each."""
    for run in runs:
        run()
    samples: list[list[Sample]] = [[] for _ in runs]
    for _ in range(repeats):
        for index, run in enumerate(runs):
            samples[index].append(run())
    return [min(found, key=lambda s: s.seconds / max(1, s.tokens)) for found in samples]


# -- 0. threads: a lone call on each thread count ---------------------------------------------


def thread_counts(options: Options) -> None:
    """Generation and prompt processing of one lone call on 1..threads threads (raw llama.cpp,
    OMP_WAIT_POLICY as this process has it): what conclave's thread rule is chosen from."""
    import llama_cpp

    print(
        f"\n0. a lone call on each thread count, {options.packs[0]}, best of {options.repeats} "
        f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})"
    )
    llama = llama_cpp.Llama(
        model_path=str(resolve_pack(options.packs[0], options.models_dir)),
        n_ctx=options.n_ctx,
        n_threads=options.threads,
        n_threads_batch=options.threads,
        verbose=False,
    )
    long_prompt = llama.tokenize(PASSAGE.encode())
    short_prompt = llama.tokenize(ESSAY[0].content.encode())

    def on(threads: int) -> tuple[Callable[[], Sample], Callable[[], Sample]]:
        def prompt() -> Sample:
            llama_cpp.llama_set_n_threads(llama.ctx, threads, threads)
            llama.reset()  # type: ignore[no-untyped-call]
            started = time.perf_counter()
            llama.eval(long_prompt)
            return Sample(time.perf_counter() - started, len(long_prompt))

        def generation() -> Sample:
            llama_cpp.llama_set_n_threads(llama.ctx, threads, threads)
            llama.reset()  # type: ignore[no-untyped-call]
            llama.eval(short_prompt)
            started = time.perf_counter()
            for _ in range(GENERATION_TOKENS):
                llama.eval([llama.sample(temp=0.0)])
            return Sample(time.perf_counter() - started, GENERATION_TOKENS)

        return prompt, generation

    counts = range(1, options.threads + 1)
    runs = [run for threads in counts for run in on(threads)]
    best = best_of(options.repeats, *runs)
    for index, threads in enumerate(counts):
        prompt, generation = best[2 * index], best[2 * index + 1]
        print(
            f"   {threads} thread(s): prompt processing {prompt.tokens_per_s:6.1f} tok/s, "
            f"generation {generation.tokens_per_s:6.1f} tok/s"
        )
    llama.close()


# -- 1. generation tokens/s, conclave beside raw llama-cpp-python -----------------------------


def generation_speed(options: Options) -> None:
    print(
        f"\n1. generation, {GENERATION_TOKENS} tokens, greedy, {options.threads} threads, "
        f"n_ctx {options.n_ctx}, best of {options.repeats} (tokens over the whole call's time)"
    )
    print(
        f"   {'pack':<14} {'raw tok/s':>10} {'conclave tok/s':>15} {'ratio':>6}  "
        "conclave's thread counts"
    )
    for name in options.packs:
        calls: list[LocalCallStats] = []
        raw_best, conclave_best = _generation_of(options, name, calls)
        ratio = conclave_best.tokens_per_s / raw_best.tokens_per_s
        print(
            f"   {name:<14} {raw_best.tokens_per_s:>10.1f} {conclave_best.tokens_per_s:>15.1f} "
            f"{ratio:>5.2f}x  {_thread_counts(calls)}"
        )


def _thread_counts(calls: list[LocalCallStats]) -> str:
    """The thread counts each call ran on, e.g. `2 | 2>1>2 | 1`."""
    return " | ".join(">".join(map(str, call.threads)) for call in calls)


def _generation_of(
    options: Options, name: str, calls: list[LocalCallStats]
) -> tuple[Sample, Sample]:
    """(raw, conclave): the best of each, interleaved, on the same GGUF; conclave's calls are
    added to `calls`."""
    import llama_cpp
    from llama_cpp.llama_types import ChatCompletionRequestMessage

    greedy = SamplingOptions(max_tokens=GENERATION_TOKENS, temperature=0.0)
    raw_messages: list[ChatCompletionRequestMessage] = [
        {"role": "user", "content": ESSAY[0].content}
    ]
    raw = llama_cpp.Llama(
        model_path=str(resolve_pack(name, options.models_dir)),
        n_ctx=options.n_ctx,
        n_threads=options.threads,
        n_threads_batch=options.threads,
        verbose=False,
    )
    provider = LocalProvider(
        models_dir=options.models_dir,
        n_threads=options.threads,
        n_ctx=options.n_ctx,
        fit_to_load=options.fit_to_load,
        on_call=calls.append,
    )
    loop = asyncio.new_event_loop()

    def run_raw() -> Sample:
        started = time.perf_counter()
        response = raw.create_chat_completion(raw_messages, **greedy.params())
        assert isinstance(response, dict)
        return Sample(time.perf_counter() - started, response["usage"]["completion_tokens"])

    def run_conclave() -> Sample:
        started = time.perf_counter()
        completion = loop.run_until_complete(provider.complete(name, ESSAY, greedy))
        return Sample(time.perf_counter() - started, completion.usage.completion_tokens)

    try:
        raw_best, conclave_best = best_of(options.repeats, run_raw, run_conclave)
    finally:
        loop.run_until_complete(provider.aclose())
        loop.close()
        raw.close()
    return raw_best, conclave_best


# -- 2. a round of two members: in parallel against back to back ------------------------------


def round_speed(options: Options) -> None:
    print(
        f"\n2. a round of two members ({' + '.join(MEMBERS)}), {GENERATION_TOKENS} tokens each, "
        f"greedy, a budget of {options.threads} threads, best of {options.repeats}"
    )
    provider = LocalProvider(
        models_dir=options.models_dir,
        n_threads=options.threads,
        n_ctx=options.n_ctx,
        fit_to_load=options.fit_to_load,
    )
    greedy = SamplingOptions(max_tokens=GENERATION_TOKENS, temperature=0.0)
    loop = asyncio.new_event_loop()

    async def parallel() -> None:
        await asyncio.gather(*(provider.complete(name, ESSAY, greedy) for name in MEMBERS))

    async def back_to_back() -> None:
        for name in MEMBERS:
            await provider.complete(name, ESSAY, greedy)

    def timed(round_: Callable[[], Coroutine[object, object, None]]) -> Callable[[], Sample]:
        def run() -> Sample:
            started = time.perf_counter()
            loop.run_until_complete(round_())
            return Sample(time.perf_counter() - started)

        return run

    parallel_best, sequential_best = best_of(options.repeats, timed(parallel), timed(back_to_back))
    speedup = sequential_best.seconds / parallel_best.seconds
    print(
        f"   in parallel {parallel_best.seconds:.2f} s, "
        f"back to back {sequential_best.seconds:.2f} s: parallel is {speedup:.2f}x faster"
    )
    loop.run_until_complete(provider.aclose())
    loop.close()


# -- 3. round 2 against round 1, with and without the prompt state cache ----------------------


def greedy_embedded_config() -> ConsensusConfig:
    """The default panel with every call greedy, so that both runs see the same tokens."""
    config = embedded_config()
    models = [spec.model_dump(mode="json") | {"temperature": 0.0} for spec in config.models]
    return config.with_changes(models=models)


async def consensus_calls(
    options: Options, prompt: str, *, keep_prompt_states: bool
) -> tuple[Transcript, list[LocalCallStats]]:
    calls: list[LocalCallStats] = []
    provider = LocalProvider(
        models_dir=options.models_dir,
        n_threads=options.threads,
        n_ctx=options.n_ctx,
        keep_prompt_states=keep_prompt_states,
        fit_to_load=options.fit_to_load,
        on_call=calls.append,
    )
    registry = ProviderRegistry(overrides={"local": provider})
    config = greedy_embedded_config()
    async with Consensus(config, registry=registry, rng=random.Random(0)) as consensus:
        await consensus.ask("Say hi.")  # loads the models: not measured
        calls.clear()
        transcript = await consensus.ask(prompt)
    await provider.aclose()
    return transcript, calls


def prompt_states_speed(options: Options) -> None:
    print(
        "\n3. prompt processing of a real consensus (default panel, greedy, one improvement "
        "round;\n   qwen2.5-0.5b is member and aggregator): tokens processed / prompt tokens, "
        "seconds"
    )
    for prompt in CONSENSUS_PROMPTS:
        label = prompt if len(prompt) < 40 else f"a {len(prompt)}-character passage and question"
        print(f"   {label!r}")
        for keep in (False, True):
            transcript, calls = asyncio.run(
                consensus_calls(options, prompt, keep_prompt_states=keep)
            )
            rounds = _split_rounds(transcript, calls)
            cells = []
            for index, round_calls in enumerate(rounds):
                total = sum(call.prompt_tokens for call in round_calls)
                processed = sum(
                    call.prompt_tokens - call.reused_prompt_tokens for call in round_calls
                )
                seconds = sum(call.prompt_s for call in round_calls)
                cells.append(f"round {index + 1}: {processed:>4}/{total:<4} {seconds:5.2f} s")
            state = "with prompt states   " if keep else "without prompt states"
            print(f"     {state}  " + "   ".join(cells))


def _split_rounds(
    transcript: Transcript, calls: list[LocalCallStats]
) -> list[list[LocalCallStats]]:
    """The calls of each round, in the order they finished (members, then the aggregator)."""
    rounds: list[list[LocalCallStats]] = []
    remaining = list(calls)
    for round_ in transcript.rounds:
        count = len(round_.responses) + (1 if round_.aggregate else 0)
        rounds.append(remaining[:count])
        remaining = remaining[count:]
    return rounds


# -- 4. whole process: `conclave complete` against a raw llama-cpp-python script ---------------


def process_speed(options: Options) -> None:
    print(
        f"\n4. whole process, {PROCESS_MODEL}, --max-tokens {PROCESS_TOKENS} --temperature 0, "
        f"best of {options.repeats}"
    )
    path = resolve_pack(PROCESS_MODEL, options.models_dir)  # joined and verified once, here
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "raw_llama.py"
        script.write_text(RAW_SCRIPT, encoding="utf-8")
        raw_command = [
            sys.executable,
            str(script),
            str(path),
            str(options.n_ctx),
            str(options.threads),
            PROCESS_PROMPT,
            str(PROCESS_TOKENS),
        ]
        conclave_command = [
            sys.executable,
            "-m",
            "conclave.cli",
            "complete",
            "--model",
            f"local:{PROCESS_MODEL}",
            "--max-tokens",
            str(PROCESS_TOKENS),
            "--temperature",
            "0",
            "--prompt",
            PROCESS_PROMPT,
        ]
        answers: dict[str, str] = {}
        environment = os.environ.copy()
        if not options.fit_to_load:
            environment["CONCLAVE_THREADS"] = str(options.threads)

        def timed(label: str, command: list[str]) -> Callable[[], Sample]:
            def run() -> Sample:
                started = time.perf_counter()
                try:
                    done = subprocess.run(
                        command,
                        capture_output=True,
                        text=True,
                        check=True,
                        env=environment,
                        timeout=options.process_limit_s,
                    )
                except subprocess.TimeoutExpired as stopped:
                    answers[label] = _text(stopped.stdout)
                    return Sample(options.process_limit_s, stopped=True)
                answers[label] = done.stdout
                return Sample(time.perf_counter() - started)

            return run

        raw_best, conclave_best = best_of(
            options.repeats, timed("raw", raw_command), timed("conclave", conclave_command)
        )
    same = "the same answer" if answers["raw"] == answers["conclave"] else "different answers"
    sizes = " and ".join(f"{len(answers[label].encode())}" for label in ("raw", "conclave"))
    print(
        f"   raw script {_seconds(raw_best)}, conclave complete {_seconds(conclave_best)}: "
        f"{_ratio(conclave_best, raw_best)} the raw script's time; {same} ({sizes} bytes)"
    )


def _text(output: bytes | str | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _seconds(sample: Sample) -> str:
    return f"> {sample.seconds:.0f} s (stopped)" if sample.stopped else f"{sample.seconds:.2f} s"


def _ratio(sample: Sample, reference: Sample) -> str:
    ratio = sample.seconds / reference.seconds
    if reference.stopped:
        return f"< {ratio:.2f}x"
    return f"> {ratio:.2f}x" if sample.stopped else f"{ratio:.2f}x"


@contextmanager
def busy_loops(count: int, niceness: int) -> Iterator[None]:
    """`count` processes spinning on the CPU at `niceness`, for the duration."""
    command = [sys.executable, "-c", "while True: pass"]
    if niceness:
        command = ["nice", "-n", str(niceness), *command]
    loops = [subprocess.Popen(command) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def main() -> None:
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packs", default=",".join(pack.name for pack in PACKS))
    parser.add_argument("--threads", type=int, help="fix conclave's thread count (else adaptive)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--only", choices=SECTIONS, action="append")
    parser.add_argument("--load", type=int, default=0, help="busy loops in other processes")
    parser.add_argument("--load-nice", type=int, default=0, help="the busy loops' niceness")
    parser.add_argument("--process-limit", type=float, default=150.0, help="seconds (section 4)")
    args = parser.parse_args()
    installed = []
    for name in args.packs.split(","):
        if pack_status(name, settings.models_dir).installed:
            installed.append(name)
        else:
            print(f"{name}: not installed, skipped")
    options = Options(
        packs=tuple(installed),
        threads=args.threads or settings.threads,
        repeats=args.repeats,
        n_ctx=args.n_ctx,
        models_dir=settings.models_dir,
        fit_to_load=args.threads is None and "threads" not in settings.model_fields_set,
        process_limit_s=args.process_limit,
    )
    fixed = "fixed" if not options.fit_to_load else "fitted to the load by conclave"
    print(
        f"conclave embedded speed: {options.threads} threads ({fixed}); "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
        f"{args.load} busy loops at niceness {args.load_nice}; load {_load_average()}"
    )
    sections = {
        "threads": thread_counts,
        "generation": generation_speed,
        "round": round_speed,
        "states": prompt_states_speed,
        "process": process_speed,
    }
    with busy_loops(args.load, args.load_nice):
        for name in args.only or SECTIONS:
            sections[name](options)
    print(f"\nload average at the end: {_load_average()}")


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
