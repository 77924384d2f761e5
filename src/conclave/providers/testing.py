"""Fakes for testing code that uses conclave, with no network and no weights (users import
them from `conclave.testing`).

```python
registry = fake_registry({
    "a": FakeModel(["Paris"]),
    "b": FunctionModel(lambda messages, options: messages[-1].content.upper(), latency_s=0.1),
})
```
Both fakes record every call in `history`; `FakeModel.enqueue()` adds answers (text or an
exception to raise) that are served in order. `fake_registry` serves them to a `Consensus`
(`Consensus(config, registry=registry)`) in place of every real provider.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import get_args

from conclave.config import ProviderKind
from conclave.errors import ProviderError, ProviderResponseError
from conclave.providers.base import Provider
from conclave.providers.registry import ProviderRegistry
from conclave.settings import Settings
from conclave.types import (
    Completion,
    Message,
    ModelInfo,
    SamplingOptions,
    StreamItem,
    TextDelta,
    Usage,
)

Answer = str | Completion | BaseException
AnswerFunction = Callable[[Sequence[Message], SamplingOptions], Answer]


@dataclass(frozen=True)
class RecordedCall:
    """One call a fake received."""

    model: str
    messages: tuple[Message, ...]
    options: SamplingOptions


class _FakeBase:
    latency_s: float
    history: list[RecordedCall]

    def answer(self, messages: Sequence[Message], options: SamplingOptions) -> Answer:
        raise NotImplementedError


@dataclass
class FakeModel(_FakeBase):
    """Serves queued answers in order; an exception in the queue is raised instead."""

    answers: Iterable[Answer] = ()
    latency_s: float = 0.0
    default: Answer | None = None
    history: list[RecordedCall] = field(default_factory=list)
    _queue: deque[Answer] = field(default_factory=deque, init=False, repr=False)

    def __post_init__(self) -> None:
        self._queue.extend(self.answers)

    def enqueue(self, *answers: Answer) -> None:
        self._queue.extend(answers)

    def answer(self, messages: Sequence[Message], options: SamplingOptions) -> Answer:
        if self._queue:
            return self._queue.popleft()
        if self.default is not None:
            return self.default
        return ProviderResponseError("FakeModel has no answer queued")


@dataclass
class FunctionModel(_FakeBase):
    """Answers with whatever `function(messages, options)` returns (or raises)."""

    function: AnswerFunction
    latency_s: float = 0.0
    history: list[RecordedCall] = field(default_factory=list)

    def answer(self, messages: Sequence[Message], options: SamplingOptions) -> Answer:
        try:
            return self.function(messages, options)
        except ProviderError as exc:
            return exc


class FakeProvider(Provider):
    """A provider whose models are fakes, looked up by name."""

    name = "fake"

    def __init__(self, models: dict[str, FakeModel | FunctionModel]) -> None:
        self.models = models
        self.closed = False

    async def complete(
        self, model: str, messages: Sequence[Message], options: SamplingOptions
    ) -> Completion:
        fake = self._fake(model)
        started = time.perf_counter()
        fake.history.append(RecordedCall(model, tuple(messages), options))
        if fake.latency_s:
            await asyncio.sleep(fake.latency_s)
        answer = fake.answer(messages, options)
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, Completion):
            return answer
        return _completion(model, answer, options, time.perf_counter() - started)

    async def stream(
        self, model: str, messages: Sequence[Message], options: SamplingOptions
    ) -> AsyncIterator[StreamItem]:
        completion = await self.complete(model, messages, options)
        for word in _pieces(completion.text):
            yield TextDelta(text=word)
        yield completion

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(id=name, name=name, provider=self.name) for name in self.models]

    async def aclose(self) -> None:
        self.closed = True

    def _fake(self, model: str) -> FakeModel | FunctionModel:
        try:
            return self.models[model]
        except KeyError:
            raise ProviderResponseError(f"no fake model named {model!r}", model=model) from None


def _completion(model: str, text: str, options: SamplingOptions, latency_s: float) -> Completion:
    words = text.split()
    limit = options.max_tokens
    truncated = limit is not None and len(words) > limit
    if truncated and limit is not None:
        text = " ".join(words[:limit])
    return Completion(
        model=model,
        text=text,
        finish_reason="length" if truncated else "stop",
        usage=Usage(prompt_tokens=1, completion_tokens=min(len(words), limit or len(words))),
        latency_s=latency_s,
    )


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [word if i == 0 else " " + word for i, word in enumerate(words)]


def fake_registry(
    models: Mapping[str, FakeModel | FunctionModel], *, settings: Settings | None = None
) -> ProviderRegistry:
    """A registry in which one `FakeProvider` holding `models` serves every model a config can
    name (OpenRouter, `local:`, any `base_url`), each looked up by its model name: the id
    without its `openrouter:` or `local:` prefix."""
    provider = FakeProvider(dict(models))
    return ProviderRegistry(settings, overrides=dict.fromkeys(get_args(ProviderKind), provider))
