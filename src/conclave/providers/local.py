"""The embedded models: llama.cpp running the GGUF packs in this process, with no network.

Each model (a pack name such as `qwen2.5-0.5b`) gets one `llama_cpp.Llama`, loaded on first use,
and one worker thread of its own. A Llama object is not thread-safe, so calls to one model run
one at a time, in order, on that thread; different models run in parallel on theirs. With
`replicas` above one, a model gets up to that many instances, each with its own thread, loaded
when calls to the model would otherwise queue: calls to one model then run side by side too (a
swarm's parallel steps, `sample`'s draws), at the cost of the model's size in memory per
instance. The event
loop only awaits: loading, prompt processing and sampling all happen off the loop.

Threads: `n_threads` (CONCLAVE_THREADS; the CPU count by default) is the CPU budget of the whole
provider, not of each model. Each running call gets an equal share, `n_threads // calls_running`
(at least one), for generation and prompt processing alike, rebalanced between tokens as calls
start and finish. So on 2 cores a lone call runs on both, and two members of a round run side by
side on one each, the survivor taking both back when the other finishes. Why: on a quiet 2-core
machine a lone call generated 1.4-1.5x faster on 2 threads than on llama.cpp's default of half
the cores, and two models on one thread each beat the same calls back to back; two
threads each only made them fight. llama.cpp's OpenMP workers keep libgomp's default and spin
while they wait, which is fastest while they have the cores to themselves and collapses when
other processes take them; so unless CONCLAVE_THREADS fixes the count, a share is lowered to
what fits beside other processes' load, measured every few tokens (`thread_policy`).
`benchmarks/embedded_speed.py` prints the numbers for the machine it runs on.

Prompt state: each model keeps its latest prompt states (`prompt_states.PromptStateCache`), so an
improvement round, or a model that alternates between member and aggregator prompts, does not
process again a prefix it has already read.

JSON answers: a call whose options carry a `json_schema` is decoded under the grammar llama.cpp
derives from that schema, so even a small model can only write JSON that fits it (up to its token
limit: an answer cut short is still cut short).

Token probabilities: a call that asks for them (`logprobs`) gets the geometric mean of its
sampled tokens' probabilities (`Completion.token_probability`), read from the logits llama.cpp
has just computed for each token, so no `logits_all` context is needed. A call that names
`first_token_choices` (option letters, "Yes"/"No") gets each one's probability as the first
token of the answer (`Completion.choice_probabilities`), read from the same logits before the
first token is sampled: a multiple-choice answer scored over every option in one call.

A call whose caller goes away (cancelled task, stream closed early) stops at the next token: the
worker checks a flag each time it samples, so no thread keeps generating for nobody.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from conclave.errors import ModelPackMissingError, ProviderError
from conclave.providers.base import Provider, ProviderCapabilities
from conclave.providers.packs import ModelPack, get_pack, pack_statuses, resolve_pack
from conclave.providers.prompt_states import PromptStateCache, StatefulLlama, held_prefix
from conclave.providers.thread_policy import CpuLoad, ThreadBudget
from conclave.types import (
    Completion,
    JsonSchema,
    Message,
    ModelInfo,
    SamplingOptions,
    StreamItem,
    TextDelta,
    Usage,
)

RUNTIME_INSTALL_HINT = "pip install 'conclave[local]'  (llama-cpp-python[server]==0.3.36)"


# With verbose=False, llama-cpp-python silences llama.cpp by pointing the process's stdout and
# stderr at /dev/null and back (`suppress_stdout_stderr`, while loading and closing a model).
# That swap is not thread-safe: two models loading at once in two worker threads leave stdout
# pointing at /dev/null for good, and the CLI's answer vanishes. One swap at a time.
_STDIO_SWAP_LOCK = threading.Lock()


class _CancelledError(Exception):
    """Raised inside the worker thread to stop a generation nobody waits for any more."""


@dataclass(frozen=True)
class LocalCallStats:
    """Where one embedded call spent its time, for benchmarks and diagnostics."""

    model: str
    prompt_tokens: int
    reused_prompt_tokens: int
    """Prompt tokens the model's context already held (llama.cpp did not process them again)."""
    prompt_s: float
    """From the start of prompt processing to the first sampled token."""
    completion_tokens: int
    generation_s: float
    """From the first sampled token to the last."""
    threads: tuple[int, ...] = ()
    """The thread counts the call ran on, in the order it switched to them."""


@dataclass
class _Call:
    """One generation, as seen by the worker thread that runs it."""

    budget: ThreadBudget
    cancelled: threading.Event = field(default_factory=threading.Event)
    prompt_tokens: int = 0
    reused_prompt_tokens: int = 0
    completion_tokens: int = 0
    threads: list[int] = field(default_factory=list)
    prompt_started: float = 0.0
    first_token_at: float | None = None
    last_token_at: float | None = None
    want_probability: bool = False
    logprob_sum: float = 0.0
    logprob_tokens: int = 0
    choices: tuple[str, ...] = ()
    choice_probabilities: dict[str, float] | None = None

    def token_probability(self) -> float | None:
        """The geometric mean of the sampled tokens' probabilities, when they were asked for."""
        if not self.want_probability or not self.logprob_tokens:
            return None
        return math.exp(self.logprob_sum / self.logprob_tokens)

    def stats(self, model: str) -> LocalCallStats:
        first = self.first_token_at or self.prompt_started
        return LocalCallStats(
            model=model,
            prompt_tokens=self.prompt_tokens,
            reused_prompt_tokens=self.reused_prompt_tokens,
            prompt_s=first - self.prompt_started,
            completion_tokens=self.completion_tokens,
            generation_s=(self.last_token_at or first) - first,
            threads=tuple(self.threads),
        )


class _HookedLlama(StatefulLlama, Protocol):
    """The Llama subclass below, as this module uses it."""

    conclave_call: _Call | None
    conclave_states: PromptStateCache | None

    def create_chat_completion(self, messages: list[Any], **kwargs: Any) -> Any: ...

    def close(self) -> None: ...


@functools.cache
def _llama_class() -> Callable[..., _HookedLlama]:
    """A Llama that reports each sampled token to the running `_Call`.

    The hook sees every token llama.cpp samples, which gives what its streams leave out (token
    counts), a cancellation point between tokens, and the moment to rebalance threads.
    """
    # OMP_WAIT_POLICY is left as the user has it: libgomp's default (spinning) was 1.6x faster
    # than passive waiting for a lone call on free cores, and under load the thread policy
    # avoids the spinning's collapse by dropping to one thread (docs/embedded.md, "Threads").
    try:
        import llama_cpp
        import numpy as np  # llama-cpp-python's own dependency
    except ImportError:
        raise ModelPackMissingError(
            f"the embedded runtime llama-cpp-python is not installed. Install it with:\n"
            f"  {RUNTIME_INSTALL_HINT}"
        ) from None

    class HookedLlama(llama_cpp.Llama):
        conclave_call: _Call | None = None
        conclave_states: PromptStateCache | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._conclave_vocab = llama_cpp.llama_model_get_vocab(self.model)

        def generate(self, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Any:
            call = self.conclave_call
            if call is not None:
                call.prompt_started = time.perf_counter()
                call.prompt_tokens = len(tokens)
                states = self.conclave_states
                held = states.restore_for(self, tokens) if states else held_prefix(self, tokens)
                # llama.cpp decodes at least the prompt's last token again, for fresh logits
                call.reused_prompt_tokens = min(held, len(tokens) - 1)
                self._conclave_rebalance(call)  # before the prompt is processed
            return super().generate(tokens, *args, **kwargs)

        def sample(self, *args: Any, **kwargs: Any) -> int:
            call = self.conclave_call
            if call is not None:
                if call.cancelled.is_set():
                    raise _CancelledError
                if call.choices and call.choice_probabilities is None:
                    call.choice_probabilities = self._conclave_choice_probabilities(call.choices)
                self._conclave_rebalance(call)
                call.last_token_at = time.perf_counter()
                if call.first_token_at is None:
                    call.first_token_at = call.last_token_at
            token = int(super().sample(*args, **kwargs))
            if call is not None and not llama_cpp.llama_vocab_is_eog(self._conclave_vocab, token):
                call.completion_tokens += 1  # llama.cpp counts the same way (end token excluded)
                if call.want_probability:
                    call.logprob_sum += self._conclave_logprob(token)
                    call.logprob_tokens += 1
            return token

        def _conclave_logprob(self, token: int) -> float:
            return float(self._conclave_logprobs()[token])

        def _conclave_logprobs(self) -> Any:
            # The logits the sampler reads (the context's last output row), before any
            # temperature: llama-cpp-python only returns logprobs with logits_all=True, which
            # keeps a row per prompt token; one row per sampled token is all this needs.
            row = llama_cpp.llama_get_logits_ith(self.ctx, -1)
            logits = np.ctypeslib.as_array(row, shape=(self.n_vocab(),))
            top = float(logits.max())
            return logits - top - math.log(float(np.exp(logits - top).sum()))

        def _conclave_choice_probabilities(self, choices: Sequence[str]) -> dict[str, float]:
            """Each choice's probability as the next token: the tokens that start it written
            alone or after a space ("B", " B"), added up."""
            logprobs = self._conclave_logprobs()
            probabilities = {}
            for choice in choices:
                tokens = {
                    spelled[0]
                    for text in (choice, f" {choice}")
                    if (spelled := self.tokenize(text.encode(), add_bos=False, special=False))
                }
                probabilities[choice] = sum(math.exp(float(logprobs[t])) for t in tokens)
            return probabilities

        def _conclave_rebalance(self, call: _Call) -> None:
            current = call.threads[-1] if call.threads else 0
            threads = call.budget.share(current)
            if threads != current:
                llama_cpp.llama_set_n_threads(self.ctx, threads, threads)
                call.threads.append(threads)

    return cast("Callable[..., _HookedLlama]", HookedLlama)


@dataclass
class _Model:
    """One pack's Llama and the single thread that may touch it."""

    pack: ModelPack
    executor: ThreadPoolExecutor
    lock: threading.Lock = field(default_factory=threading.Lock)
    llama: _HookedLlama | None = None
    load_s: float | None = None
    calls: int = 0
    """Calls given to this instance that have not ended (counted under the provider's lock)."""


class LocalProvider(Provider):
    """The embedded GGUF packs, run by llama.cpp in worker threads.

    Model names are pack names (`smollm2-135m`, `qwen2.5-0.5b`, `qwen2.5-1.5b`). A pack's files
    are located, joined and checked on the first call to it; a missing pack raises
    ModelPackMissingError with the command that installs it, an unknown name ConfigError.
    """

    name = "local"
    capabilities = ProviderCapabilities(token_probabilities=True, embedded=True)

    def __init__(
        self,
        *,
        models_dir: Path,
        n_threads: int,
        n_ctx: int = 4096,
        keep_prompt_states: bool = True,
        fit_to_load: bool = True,
        replicas: int = 1,
        on_call: Callable[[LocalCallStats], None] | None = None,
    ) -> None:
        """`n_threads` is the CPU budget shared by all running calls; `fit_to_load` lowers a
        call's share while other processes use the cores (see `thread_policy`; off when the
        user fixed the count); `keep_prompt_states` lets each model keep its latest prompt
        states (bounded: see `prompt_states`); `replicas` is how many instances of one pack
        may answer at once (each loaded when calls to the pack would otherwise queue, at the
        pack's size in memory); `on_call` receives each finished call's LocalCallStats, on
        the model's worker thread."""
        if n_threads < 1:
            raise ValueError(f"n_threads must be at least 1, not {n_threads}")
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, not {replicas}")
        self.replicas = replicas
        self.models_dir = models_dir
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self.keep_prompt_states = keep_prompt_states
        self._on_call = on_call
        self.fit_to_load = fit_to_load
        load = CpuLoad() if fit_to_load else None
        if load is not None:
            load.start()
        self._budget = ThreadBudget(n_threads, load)
        self._models: dict[str, list[_Model]] = {}
        self._models_lock = threading.Lock()

    async def complete(
        self, model: str, messages: Sequence[Message], options: SamplingOptions
    ) -> Completion:
        slot = self._take(model)
        call = _Call(
            self._budget, want_probability=options.logprobs, choices=options.first_token_choices
        )
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(
                slot.executor, self._generate, slot, messages, options, call, None
            )
        finally:
            call.cancelled.set()  # a no-op once done; stops the worker if we were cancelled
            self._give_back(slot)
        choice = response["choices"][0]
        usage = response["usage"]
        return Completion(
            model=model,
            text=choice["message"]["content"] or "",
            finish_reason=choice["finish_reason"],
            usage=Usage(
                prompt_tokens=usage["prompt_tokens"],
                completion_tokens=usage["completion_tokens"],
                cost_usd=0.0,
            ),
            latency_s=time.perf_counter() - started,
            token_probability=call.token_probability(),
            choice_probabilities=call.choice_probabilities,
        )

    async def stream(
        self, model: str, messages: Sequence[Message], options: SamplingOptions
    ) -> AsyncIterator[StreamItem]:
        slot = self._take(model)
        call = _Call(
            self._budget, want_probability=options.logprobs, choices=options.first_token_choices
        )
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | _StreamEnd] = asyncio.Queue()

        def emit(item: str | _StreamEnd) -> None:  # runs on the worker thread
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody will read this stream
                call.cancelled.set()

        def worker_done(worker: asyncio.Future[None]) -> None:  # runs on the loop
            if not worker.cancelled() and (error := worker.exception()) is not None:
                queue.put_nowait(_StreamEnd(error=error))  # not expected: _generate reports

        worker = loop.run_in_executor(
            slot.executor, self._generate, slot, messages, options, call, emit
        )
        worker.add_done_callback(worker_done)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, str):
                    yield TextDelta(text=item)
                    continue
                if item.error is not None:
                    raise item.error
                yield Completion(
                    model=model,
                    text=item.text,
                    finish_reason=item.finish_reason,
                    usage=item.usage,
                    latency_s=time.perf_counter() - started,
                    token_probability=call.token_probability(),
                    choice_probabilities=call.choice_probabilities,
                )
                return
        finally:
            # Left early: a queued call never starts, a running one stops at its next token.
            call.cancelled.set()
            worker.cancel()
            self._give_back(slot)

    async def list_models(self) -> list[ModelInfo]:
        statuses = await asyncio.to_thread(pack_statuses, self.models_dir)
        return [
            ModelInfo(
                id=status.pack.name,
                name=status.pack.title,
                provider=self.name,
                context_length=min(self.n_ctx, status.pack.context_length),
                prompt_price_usd=0.0,
                completion_price_usd=0.0,
                installed=status.installed,
                description=status.pack.description,
            )
            for status in statuses
        ]

    async def aclose(self) -> None:
        """Free every loaded model once its running and queued calls are done. The provider
        stays usable: a later call loads its model again."""
        with self._models_lock:
            models = [slot for slots in self._models.values() for slot in slots]
            self._models.clear()
        loop = asyncio.get_running_loop()
        for slot in models:
            await loop.run_in_executor(slot.executor, _unload, slot)
            slot.executor.shutdown(wait=False)

    def loaded_models(self) -> dict[str, float]:
        """Models loaded so far, with the seconds each took to load (for diagnostics)."""
        with self._models_lock:
            return {
                name: slot.load_s
                for name, slots in self._models.items()
                for slot in slots[:1]
                if slot.load_s is not None
            }

    def loaded_instances(self) -> dict[str, int]:
        """How many instances of each model are loaded (more than one with `replicas`)."""
        with self._models_lock:
            return {
                name: sum(slot.llama is not None for slot in slots)
                for name, slots in self._models.items()
            }

    def _take(self, name: str) -> _Model:
        """The instance of `name` to give a call: the one with the fewest calls, or a new one
        when every instance has calls and `replicas` allows another. Each taken instance is
        given back (`_give_back`) when its call ends."""
        pack = get_pack(name)  # ConfigError for a name that is no pack
        with self._models_lock:
            slots = self._models.setdefault(name, [])
            slot = min(slots, key=lambda s: s.calls, default=None)
            if slot is None or (slot.calls and len(slots) < self.replicas):
                executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"conclave-local-{name}-{len(slots)}"
                )
                slot = _Model(pack=pack, executor=executor)
                slots.append(slot)
            slot.calls += 1
            return slot

    def _give_back(self, slot: _Model) -> None:
        with self._models_lock:
            slot.calls -= 1

    def _generate(
        self,
        slot: _Model,
        messages: Sequence[Message],
        options: SamplingOptions,
        call: _Call,
        emit: Callable[[str | _StreamEnd], None] | None,
    ) -> Any:
        """Runs on the model's own thread: one whole completion, or one stream via `emit`."""
        name = slot.pack.name
        try:
            with slot.lock:
                if call.cancelled.is_set():
                    raise _CancelledError
                llama = self._load(slot)
                self._budget.enter()
                llama.conclave_call = call
                try:
                    result = llama.create_chat_completion(
                        [message.model_dump() for message in messages],
                        stream=emit is not None,
                        grammar=_grammar(options.json_schema, name),
                        **options.model_copy(update={"logprobs": False}).params(),
                    )
                    if emit is not None:
                        _pump(result, call, emit)
                        result = None
                finally:
                    llama.conclave_call = None
                    self._budget.leave()
                if not call.cancelled.is_set():
                    self._finished(slot, llama, call)
                return result
        except _CancelledError:
            return None
        except (ProviderError, ModelPackMissingError) as exc:
            if emit is None:
                raise
            emit(_StreamEnd(error=exc))
        except Exception as exc:
            error = ProviderError(f"local model {name}: {exc}", model=name)
            if emit is None:
                raise error from exc
            error.__cause__ = exc
            emit(_StreamEnd(error=error))
        return None

    def _finished(self, slot: _Model, llama: _HookedLlama, call: _Call) -> None:
        """Keep the context's state for the next prompt sharing its prefix; report the call."""
        if llama.conclave_states is not None:
            llama.conclave_states.save(llama)
        if self._on_call is not None:
            self._on_call(call.stats(slot.pack.name))

    def _load(self, slot: _Model) -> _HookedLlama:
        if slot.llama is not None:
            return slot.llama
        pack = slot.pack
        llama_class = _llama_class()
        path = resolve_pack(pack, self.models_dir)
        started = time.perf_counter()
        try:
            with _STDIO_SWAP_LOCK:
                llama = llama_class(
                    model_path=str(path),
                    n_ctx=min(self.n_ctx, pack.context_length),
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    verbose=False,
                )
        except Exception as exc:
            raise ProviderError(
                f"local model {pack.name} failed to load from {path}: {exc}", model=pack.name
            ) from exc
        slot.load_s = time.perf_counter() - started
        if self.keep_prompt_states:
            llama.conclave_states = PromptStateCache()
        slot.llama = llama
        return llama


def _grammar(schema: JsonSchema | None, model: str) -> Any:
    """The llama.cpp grammar that makes an answer JSON satisfying `schema` (None without one)."""
    if schema is None:
        return None
    try:
        return _grammar_for(schema.text)
    except Exception as exc:  # llama.cpp's converter asserts on what it does not support
        raise ProviderError(
            f"local model {model}: the JSON schema {schema.name!r} cannot be turned into a "
            f"grammar ({type(exc).__name__}: {exc}); use the keywords llama.cpp supports",
            model=model,
        ) from exc


_LOOSE_CHAR_RULE = r'char ::= [^"\\] |'
_STRICT_CHAR_RULE = r'char ::= [^"\\\x7F\x00-\x1F] |'
"""llama-cpp-python's converter lets a string hold raw control characters (a newline inside a
string, which JSON forbids and small models write); llama.cpp's own converter excludes them,
as the strict rule does."""


@functools.lru_cache(maxsize=32)
def _grammar_for(schema_text: str) -> Any:
    """The grammar of a schema, built once: a LlamaGrammar only holds its rules as text, so
    one serves every call and thread."""
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    rules = json_schema_to_gbnf(schema_text).replace(_LOOSE_CHAR_RULE, _STRICT_CHAR_RULE)
    return LlamaGrammar.from_string(rules, verbose=False)


@dataclass(frozen=True)
class _StreamEnd:
    """The last item a worker puts on a stream's queue."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    error: BaseException | None = None


def _pump(chunks: Any, call: _Call, emit: Callable[[str | _StreamEnd], None]) -> None:
    """Forward llama.cpp's chunks as text pieces, then one end marker; stop if cancelled."""
    pieces: list[str] = []
    finish_reason: str | None = None
    try:
        for chunk in chunks:
            choice = chunk["choices"][0]
            text = choice["delta"].get("content")
            if text:
                pieces.append(text)
                emit(text)
            if choice["finish_reason"] is not None:
                finish_reason = choice["finish_reason"]
            if call.cancelled.is_set():
                return
    finally:
        chunks.close()
    usage = Usage(
        prompt_tokens=call.prompt_tokens, completion_tokens=call.completion_tokens, cost_usd=0.0
    )
    emit(_StreamEnd(text="".join(pieces), finish_reason=finish_reason, usage=usage))


def _unload(slot: _Model) -> None:
    with slot.lock:
        if slot.llama is not None:
            with _STDIO_SWAP_LOCK:
                slot.llama.close()
            slot.llama = None
