"""A call cache for deterministic model calls, so each is computed once.

A call is deterministic when it samples at temperature 0 or with a fixed seed: the same model,
messages and options give the same answer, so an evaluation computes it once and reuses it
across set-ups (a member alone and the same member in a consensus send the same round-0 call)
and across resumed runs. Calls are kept in SQLite; two identical calls running at once are
computed once (the second waits for the first). Anything else passes straight through.

What a call only observes (token probabilities, the first token's choice probabilities) does
not change its answer, so it is not part of the key: an embedded call is computed with token
probabilities always on, and a kept call serves any request whose observations it holds (one
asking for choices it lacks is computed again, with both sets of choices).

`CallMeter` counts, for the calls made inside one `metered()` block, how many there were, how
many came from the cache, and the model time they took when they were computed: so the time
per question stays honest when the cache answers in microseconds.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from conclave.config import ModelSpec
from conclave.providers.base import Provider
from conclave.providers.registry import ProviderRegistry
from conclave.types import Completion, Message, ModelInfo, SamplingOptions, StreamItem, TextDelta


@dataclass
class CallMeter:
    """The calls made inside one `metered()` block."""

    calls: int = 0
    cached_calls: int = 0
    model_s: float = 0.0
    """Seconds the calls took when they were computed (cached ones count their original time)."""

    def record(self, completion: Completion, *, cached: bool) -> None:
        self.calls += 1
        self.cached_calls += cached
        self.model_s += completion.latency_s


_meter: contextvars.ContextVar[CallMeter | None] = contextvars.ContextVar("meter", default=None)


@contextmanager
def metered() -> Iterator[CallMeter]:
    """Count the calls made in this block, including those of tasks it starts."""
    meter = CallMeter()
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


def _record(completion: Completion, *, cached: bool) -> None:
    meter = _meter.get()
    if meter is not None:
        meter.record(completion, cached=cached)


def is_deterministic(options: SamplingOptions) -> bool:
    """Whether a call with these options always gives the same answer."""
    return options.temperature == 0.0 or options.seed is not None


OBSERVATIONS = {"logprobs", "first_token_choices"}
"""The options that only ask what the model saw, never change what it answers."""


def serves(kept: Completion, options: SamplingOptions) -> bool:
    """Whether a kept completion holds every observation `options` ask for."""
    if options.logprobs and kept.token_probability is None:
        return False
    wanted = set(options.first_token_choices)
    return not wanted or wanted <= set(kept.choice_probabilities or {})


def as_asked(completion: Completion, options: SamplingOptions) -> Completion:
    """The completion with only the observations `options` asked for, as an uncached call
    would have returned it."""
    wanted = options.first_token_choices
    held = completion.choice_probabilities or {}
    return completion.model_copy(
        update={
            "token_probability": completion.token_probability if options.logprobs else None,
            "choice_probabilities": {c: held[c] for c in wanted if c in held} if wanted else None,
        }
    )


def observing(
    kept: Completion | None, options: SamplingOptions, *, embedded: bool
) -> SamplingOptions:
    """The options to compute a call with: an embedded call also observes its token
    probabilities (free there), and the choices a kept completion held are asked again."""
    held = tuple((kept.choice_probabilities or {}) if kept is not None else ())
    choices = tuple(dict.fromkeys((*options.first_token_choices, *held)))
    return options.model_copy(
        update={"logprobs": options.logprobs or embedded, "first_token_choices": choices}
    )


class CallCache:
    """Completions by call, in SQLite (in memory without a path)."""

    def __init__(self, path: Path | None = None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, completion TEXT NOT NULL)"
        )
        self._db.commit()
        self._locks: dict[str, asyncio.Lock] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(where: str, model: str, messages: Sequence[Message], options: SamplingOptions) -> str:
        call = {
            "where": where,
            "model": model,
            "messages": [m.model_dump(mode="json") for m in messages],
            "options": options.model_dump(mode="json", exclude=OBSERVATIONS),
        }
        return hashlib.sha256(json.dumps(call, sort_keys=True).encode()).hexdigest()

    def get(self, key: str) -> Completion | None:
        row = self._db.execute("SELECT completion FROM calls WHERE key = ?", (key,)).fetchone()
        return Completion.model_validate_json(row[0]) if row else None

    def put(self, key: str, completion: Completion) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO calls (key, completion) VALUES (?, ?)",
            (key, completion.model_dump_json()),
        )
        self._db.commit()

    def lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def __len__(self) -> int:
        count: int = self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        return count

    def close(self) -> None:
        self._db.close()


class CachingProvider(Provider):
    """Serves deterministic calls from a CallCache, computing each once through `inner`
    (without a cache, every call goes through; both are metered)."""

    def __init__(self, inner: Provider, cache: CallCache | None, *, where: str) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities  # what the wrapped backend can report
        self._cache = cache
        self._where = where

    async def complete(
        self, model: str, messages: Sequence[Message], options: SamplingOptions
    ) -> Completion:
        if self._cache is None or not is_deterministic(options):
            completion = await self._computed(model, messages, options)
            _record(completion, cached=False)
            return completion
        key = CallCache.key(self._where, model, messages, options)
        async with self._cache.lock(key):
            cached = self._cache.get(key)
            if cached is not None and serves(cached, options):
                self._cache.hits += 1
                _record(cached, cached=True)
                return as_asked(cached, options)
            embedded = self.name == "local"
            completion = await self._computed(
                model, messages, observing(cached, options, embedded=embedded)
            )
            self._cache.misses += 1
            self._cache.put(key, completion)
        _record(completion, cached=False)
        return as_asked(completion, options)

    async def stream(
        self, model: str, messages: Sequence[Message], options: SamplingOptions
    ) -> AsyncIterator[StreamItem]:
        completion = await self.complete(model, messages, options)
        yield TextDelta(text=completion.text)
        yield completion

    async def list_models(self) -> list[ModelInfo]:
        return await self.inner.list_models()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def _computed(
        self, model: str, messages: Sequence[Message], options: SamplingOptions
    ) -> Completion:
        started = time.perf_counter()
        completion = await self.inner.complete(model, messages, options)
        return completion.model_copy(update={"latency_s": time.perf_counter() - started})


class CachingRegistry(ProviderRegistry):
    """A ProviderRegistry whose providers answer deterministic calls from `cache` (none: no
    reuse) and count every call for `metered()`."""

    def __init__(self, cache: CallCache | None, registry: ProviderRegistry | None = None) -> None:
        inner = registry or ProviderRegistry()
        super().__init__(inner.settings)
        self._inner = inner
        self._cache = cache
        self._wrapped: dict[int, CachingProvider] = {}

    def provider_for(self, spec: ModelSpec) -> Provider:
        inner = self._inner.provider_for(spec)
        if id(inner) not in self._wrapped:
            where = f"{spec.provider}:{spec.base_url or ''}"
            self._wrapped[id(inner)] = CachingProvider(inner, self._cache, where=where)
        return self._wrapped[id(inner)]

    async def aclose(self) -> None:
        self._wrapped.clear()
        await self._inner.aclose()
