"""The embedded provider against the real packs (SmolLM2-135M and Qwen2.5-Coder-0.5B).

Models load once per session (`local_provider`); every call keeps `max_tokens` small.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conclave.errors import ConfigError, ModelPackMissingError, ProviderError
from conclave.providers import local
from conclave.providers.local import LocalCallStats, LocalProvider
from conclave.providers.packs import ModelPack, PackPart, pack_status
from conclave.providers.prompt_states import PromptStateCache
from conclave.providers.registry import ProviderRegistry
from conclave.settings import Settings
from conclave.types import Completion, Message, SamplingOptions, StreamItem, TextDelta

if TYPE_CHECKING:
    from llama_cpp import Llama

SMOL = "smollm2-135m"
QWEN = "qwen2.5-0.5b"

ARITHMETIC = [Message(role="user", content="What is 17 + 25? Answer with the number.")]
ESSAY = [Message(role="user", content="Write a long essay on the history of Rome.")]
GREEDY = SamplingOptions(max_tokens=24, temperature=0.0, seed=1)


async def collect(
    stream_items: AsyncIterator[StreamItem],
) -> tuple[list[TextDelta], list[Completion]]:
    """The deltas and completions of a stream, checking no delta follows the completion."""
    deltas: list[TextDelta] = []
    completions: list[Completion] = []
    async for item in stream_items:
        if isinstance(item, TextDelta):
            assert not completions, "a delta came after the completion"
            deltas.append(item)
        else:
            completions.append(item)
    return deltas, completions


# -- without the models: names, listing ----------------------------------------------------------


async def test_an_unknown_model_is_a_config_error(tmp_path: Path) -> None:
    provider = LocalProvider(models_dir=tmp_path, n_threads=1)
    with pytest.raises(ConfigError, match="unknown embedded model 'gpt-5'"):
        await provider.complete("gpt-5", ARITHMETIC, GREEDY)


async def test_list_models_shows_every_pack_free_with_its_installed_flag(tmp_path: Path) -> None:
    provider = LocalProvider(models_dir=tmp_path, n_threads=1, n_ctx=2048)

    models = {info.id: info for info in await provider.list_models()}

    assert list(models) == [SMOL, QWEN, "qwen2.5-1.5b"]
    for name, info in models.items():
        assert info.provider == "local"
        assert info.free
        assert info.context_length == 2048
        assert info.installed == pack_status(name, tmp_path).installed


async def test_a_pack_that_is_not_installed_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = ModelPack(
        name="fake-9b",
        title="Fake 9B",
        description="a pack whose wheel is not installed",
        filename="fake-9b.gguf",
        parts=(PackPart(distribution="conclave-no-such-pack", version="1.0", file="x/f.gguf"),),
        sha256="0" * 64,
        size_bytes=1,
        context_length=2048,
        requirements_file="requirements/packs.txt",
    )
    monkeypatch.setattr(local, "get_pack", lambda name: missing)
    provider = LocalProvider(models_dir=tmp_path, n_threads=1)

    with pytest.raises(ModelPackMissingError, match=r"--require-hashes -r requirements/packs\.txt"):
        await provider.complete("fake-9b", ARITHMETIC, GREEDY)


# -- the real models ------------------------------------------------------------------------------

embedded = pytest.mark.embedded


@embedded
async def test_complete_answers_with_usage_and_finish_reason(local_provider: LocalProvider) -> None:
    completion = await local_provider.complete(QWEN, ARITHMETIC, GREEDY)

    assert completion.model == QWEN
    assert completion.text.strip()
    assert completion.finish_reason in {"stop", "length"}
    assert completion.truncated == (completion.finish_reason == "length")
    assert completion.usage.prompt_tokens > 10
    assert 0 < completion.usage.completion_tokens <= 24
    assert completion.usage.cost_usd == 0.0
    assert completion.latency_s > 0


@embedded
@pytest.mark.parametrize("model", [SMOL, QWEN])
async def test_stream_yields_deltas_then_the_same_completion(
    local_provider: LocalProvider, model: str
) -> None:
    whole = await local_provider.complete(model, ARITHMETIC, GREEDY)

    deltas, completions = await collect(local_provider.stream(model, ARITHMETIC, GREEDY))

    assert len(completions) == 1
    streamed = completions[0]
    assert len(deltas) >= 2
    assert "".join(delta.text for delta in deltas) == streamed.text
    # Greedy decoding is not bit-identical between a streamed and a whole call on every CPU
    # build of llama.cpp, so the two answers are compared by form, not by their words.
    assert whole.text.strip()
    assert streamed.finish_reason in {"stop", "length"}
    assert streamed.usage.prompt_tokens == whole.usage.prompt_tokens  # the same prompt
    assert 0 < streamed.usage.completion_tokens <= 24  # GREEDY.max_tokens, counted per token


@embedded
async def test_token_probabilities_come_back_only_when_asked_for(
    local_provider: LocalProvider,
) -> None:
    asked = GREEDY.model_copy(update={"logprobs": True})
    plain = await local_provider.complete(SMOL, ARITHMETIC, GREEDY)
    whole = await local_provider.complete(SMOL, ARITHMETIC, asked)
    _, (streamed,) = await collect(local_provider.stream(SMOL, ARITHMETIC, asked))

    assert plain.token_probability is None
    for completion in (whole, streamed):
        assert completion.token_probability is not None
        assert 0.0 < completion.token_probability <= 1.0


@embedded
async def test_a_tiny_max_tokens_is_flagged_as_length(local_provider: LocalProvider) -> None:
    options = SamplingOptions(max_tokens=3, temperature=0.0)

    completion = await local_provider.complete(SMOL, ESSAY, options)
    _, [streamed] = await collect(local_provider.stream(SMOL, ESSAY, options))

    for answer in (completion, streamed):
        assert answer.finish_reason == "length"
        assert answer.truncated
        assert answer.usage.completion_tokens == 3


@embedded
async def test_a_prompt_longer_than_the_context_is_a_provider_error_naming_the_model(
    local_provider: LocalProvider,
) -> None:
    too_long = [Message(role="user", content="word " * 3000)]  # the session's n_ctx is 2048

    with pytest.raises(ProviderError, match=f"local model {SMOL}: .*context window") as caught:
        await local_provider.complete(SMOL, too_long, GREEDY)
    assert caught.value.model == SMOL

    with pytest.raises(ProviderError, match="context window"):
        await collect(local_provider.stream(SMOL, too_long, GREEDY))


async def _timeline(
    provider: LocalProvider, calls: list[tuple[str, str, int]]
) -> list[tuple[str, str]]:
    """Run streams (label, model, max_tokens) at once; return (label, 'delta' | 'done') in the
    order they happened."""
    events: list[tuple[str, str]] = []

    async def run(label: str, model: str, max_tokens: int) -> None:
        options = SamplingOptions(max_tokens=max_tokens, temperature=0.0)
        async for item in provider.stream(model, ESSAY, options):
            events.append((label, "delta" if isinstance(item, TextDelta) else "done"))

    await asyncio.gather(*(run(*call) for call in calls))
    return events


async def _warm(provider: LocalProvider, *models: str) -> None:
    for model in models:
        await provider.complete(model, ARITHMETIC, SamplingOptions(max_tokens=1))


@embedded
async def test_two_models_generate_at_the_same_time(local_provider: LocalProvider) -> None:
    """SmolLM2 is given many tokens and Qwen few, so that Qwen's first token comes before
    SmolLM2's last one whenever the two really run at once, even on a slow machine."""
    await _warm(local_provider, SMOL, QWEN)

    events = await _timeline(local_provider, [("smol", SMOL, 96), ("qwen", QWEN, 8)])

    first_done = events.index(next(event for event in events if event[1] == "done"))
    started_before = {label for label, kind in events[:first_done] if kind == "delta"}
    assert started_before == {"smol", "qwen"}, events


@embedded
async def test_calls_to_one_model_take_turns(local_provider: LocalProvider) -> None:
    await _warm(local_provider, SMOL)

    events = await _timeline(local_provider, [("first", SMOL, 12), ("second", SMOL, 12)])

    labels = [label for label, _ in events]
    assert labels == sorted(labels, key=labels.index), labels  # one whole run, then the other
    assert min(labels.count("first"), labels.count("second")) > 2


@embedded
async def test_inference_does_not_block_the_event_loop(local_provider: LocalProvider) -> None:
    await _warm(local_provider, QWEN)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await local_provider.complete(QWEN, ESSAY, SamplingOptions(max_tokens=24, temperature=0.0))
    elapsed = time.perf_counter() - started
    task.cancel()

    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    # A blocked loop would show one gap as long as the whole call.
    assert len(ticks) >= elapsed / 0.05
    assert max(gaps) < min(0.5, elapsed / 2)


@embedded
async def test_a_cancelled_call_stops_generating(local_provider: LocalProvider) -> None:
    """Were the worker to go on for its 2000 tokens (a minute or more), the next call to the
    same model would wait behind it."""
    await _warm(local_provider, QWEN)
    long_run = asyncio.create_task(
        local_provider.complete(QWEN, ESSAY, SamplingOptions(max_tokens=2000, temperature=0.0))
    )
    await asyncio.sleep(0.5)
    long_run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long_run

    started = time.perf_counter()
    await local_provider.complete(QWEN, ARITHMETIC, SamplingOptions(max_tokens=4))
    assert time.perf_counter() - started < 10


@embedded
async def test_a_stream_left_early_stops_generating(local_provider: LocalProvider) -> None:
    await _warm(local_provider, QWEN)
    options = SamplingOptions(max_tokens=2000, temperature=0.0)
    stream = local_provider.stream(QWEN, ESSAY, options)

    first: StreamItem = await anext(stream)
    assert isinstance(first, TextDelta)
    await stream.aclose()  # type: ignore[attr-defined]

    started = time.perf_counter()
    await local_provider.complete(QWEN, ARITHMETIC, SamplingOptions(max_tokens=4))
    assert time.perf_counter() - started < 10


@embedded
async def test_aclose_releases_models_and_a_later_call_loads_again(
    models_dir: Path, embedded_models: dict[str, Path]
) -> None:
    provider = LocalProvider(models_dir=models_dir, n_threads=1, n_ctx=512)
    await provider.complete(SMOL, ARITHMETIC, SamplingOptions(max_tokens=2))
    assert list(provider.loaded_models()) == [SMOL]

    await provider.aclose()
    assert provider.loaded_models() == {}

    again = await provider.complete(SMOL, ARITHMETIC, SamplingOptions(max_tokens=2))
    assert again.usage.completion_tokens == 2
    await provider.aclose()


@embedded
async def test_models_loading_at_once_leave_stdout_and_stderr_in_place(
    models_dir: Path, embedded_models: dict[str, Path]
) -> None:
    """llama-cpp-python swaps the process's stdout/stderr for /dev/null while a model loads;
    two loads at once must not leave them swapped (the CLI's answer would vanish)."""
    stdout, stderr = sys.stdout, sys.stderr
    before = (os.fstat(1).st_ino, os.fstat(2).st_ino)
    for _ in range(3):
        provider = LocalProvider(models_dir=models_dir, n_threads=2, n_ctx=512)
        tiny = SamplingOptions(max_tokens=1)
        await asyncio.gather(
            provider.complete(SMOL, ARITHMETIC, tiny), provider.complete(QWEN, ARITHMETIC, tiny)
        )
        await provider.aclose()
        assert (sys.stdout, sys.stderr) == (stdout, stderr)
        assert (os.fstat(1).st_ino, os.fstat(2).st_ino) == before


# -- threads and prompt states ----------------------------------------------------------------


def test_conclave_threads_fixes_the_count_and_otherwise_it_follows_the_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONCLAVE_THREADS", raising=False)
    by_default = ProviderRegistry(Settings(_env_file=None)).local()
    assert isinstance(by_default, LocalProvider)
    assert by_default.fit_to_load
    monkeypatch.setenv("CONCLAVE_THREADS", "2")
    fixed = ProviderRegistry(Settings(_env_file=None)).local()
    assert isinstance(fixed, LocalProvider)
    assert not fixed.fit_to_load
    assert fixed.n_threads == 2


@contextlib.contextmanager
def cores_held_by_other_processes() -> Iterator[None]:
    """A busy loop in another process on every core, for the duration."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        time.sleep(0.5)  # let them start
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


@embedded
@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="the load is read from /proc/stat")
async def test_a_call_on_cores_other_processes_hold_runs_on_one_thread(
    models_dir: Path, embedded_models: dict[str, Path]
) -> None:
    """Two spinning threads on busy cores collapse; one thread has no barriers to spin at.
    CONCLAVE_THREADS (fit_to_load off) still gets the count it asked for."""
    calls: list[LocalCallStats] = []
    options = SamplingOptions(max_tokens=4, temperature=0.0)
    with cores_held_by_other_processes():
        for fit_to_load in (True, False):
            provider = LocalProvider(
                models_dir=models_dir,
                n_threads=2,
                n_ctx=512,
                fit_to_load=fit_to_load,
                on_call=calls.append,
            )
            try:
                await provider.complete(SMOL, ARITHMETIC, options)
            finally:
                await provider.aclose()
    fitted, fixed = calls
    assert fitted.threads == (1,)
    assert fixed.threads == (2,)


def _alternating_prompts() -> tuple[list[Message], list[Message], list[Message]]:
    """A member prompt, an aggregator prompt, then the member's improvement prompt, which
    repeats the member prompt as its prefix (as an improvement round does)."""
    question = Message(role="user", content="Describe the water cycle. " * 12)
    member = [question]
    aggregator = [
        Message(role="system", content="You combine the answers of a panel into one."),
        Message(role="user", content="Combine: it rains; water evaporates."),
    ]
    improvement = [
        question,
        Message(role="assistant", content="Consensus: water evaporates and falls as rain."),
        Message(role="user", content="Answer again, briefly."),
    ]
    return member, aggregator, improvement


@embedded
@pytest.mark.parametrize("keep_prompt_states", [True, False])
async def test_a_model_alternating_between_two_prompts_does_not_read_its_prefix_again(
    models_dir: Path, embedded_models: dict[str, Path], keep_prompt_states: bool
) -> None:
    calls: list[LocalCallStats] = []
    provider = LocalProvider(
        models_dir=models_dir,
        n_threads=2,
        n_ctx=1024,
        keep_prompt_states=keep_prompt_states,
        on_call=calls.append,
    )
    member, aggregator, improvement = _alternating_prompts()
    options = SamplingOptions(max_tokens=4, temperature=0.0)
    try:
        for messages in (member, aggregator, improvement):
            completion = await provider.complete(SMOL, messages, options)
            assert completion.usage.completion_tokens > 0
    finally:
        await provider.aclose()

    first, second, third = calls
    assert first.prompt_tokens > 50
    assert second.reused_prompt_tokens < 10  # a different prompt: only the template's start
    if keep_prompt_states:
        # the member prompt's tokens up to its end-of-turn marker were kept
        assert third.reused_prompt_tokens >= first.prompt_tokens - 5
    else:
        assert third.reused_prompt_tokens < 10
    for call in calls:
        assert call.reused_prompt_tokens < call.prompt_tokens  # at least one token is decoded


def _read(llama: Llama, tokens: list[int]) -> None:
    """Process `tokens` from an empty context."""
    llama.reset()  # type: ignore[no-untyped-call]
    llama.eval(tokens)


@embedded
def test_prompt_states_stay_within_their_bounds_and_restore_a_prefix(
    embedded_models: dict[str, Path],
) -> None:
    import llama_cpp

    llama = llama_cpp.Llama(
        model_path=str(embedded_models[SMOL]), n_ctx=512, n_threads=1, verbose=False
    )
    cache = PromptStateCache(max_states=2)
    prompts = [llama.tokenize(f"Story number {n}: once upon a time".encode() * 4) for n in range(3)]
    try:
        for tokens in prompts:
            _read(llama, tokens)
            cache.save(llama)
        assert len(cache) == 2  # the oldest state was dropped

        _read(llama, llama.tokenize(b"Something else entirely."))
        assert cache.restore_for(llama, prompts[0]) < 10  # dropped: nothing to restore
        assert cache.restore_for(llama, prompts[2] + [13]) == len(prompts[2])
        assert llama.n_tokens == len(prompts[2])

        one_state = cache.size_bytes // 2
        small = PromptStateCache(max_states=4, max_bytes=one_state + one_state // 2)
        for tokens in prompts:
            _read(llama, tokens)
            small.save(llama)
        assert len(small) == 1
        assert small.size_bytes <= small.max_bytes
    finally:
        llama.close()
