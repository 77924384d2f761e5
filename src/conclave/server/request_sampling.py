"""A request's sampling options (OpenAI's `max_tokens`, `temperature`, `top_p`, `seed`, `stop`,
`presence_penalty`, `frequency_penalty`), applied to every model call of its run: each
member's answers, the aggregator's consensus, a fallback's, a rewrite to a response format.

How each one applies:
- `max_tokens` caps every call, whatever the preset or the strategy would give it (a
  reasoning draw's extra room included), so the answer has at most that many tokens too;
- `temperature`, `top_p` and `seed` replace each model's own; a strategy that draws several
  answers from one model still varies its draws from them (`sample` keeps its least
  temperature and gives each draw the request's seed plus the draw's number);
- `stop` sequences are added to the preset's own; the penalties are sent with every call.

A run with options runs on an engine of its own: the preset's config and panel with the
options applied, sharing the preset's breakers, so that a failing upstream rests for every
request alike. Engines are kept per preset and options (the most recently used few).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence

from pydantic import Field

from conclave.config import ModelSpec
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.panel import Member, Panel
from conclave.providers.base import Provider
from conclave.types import (
    Completion,
    Frozen,
    Message,
    ModelInfo,
    SamplingOptions,
    StreamItem,
)


class RequestSampling(Frozen):
    """What one request asks of every model call of its run (None: the preset decides)."""

    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float | None = None
    frequency_penalty: float | None = None

    @property
    def given(self) -> bool:
        """Whether the request set any option."""
        return self != _NOTHING

    def spec(self, spec: ModelSpec) -> ModelSpec:
        """A model's settings under this request (strategies derive their draws from them)."""
        changes: dict[str, object] = {}
        if self.max_tokens is not None:
            changes["max_tokens"] = min(spec.max_tokens, self.max_tokens)
        for name in ("temperature", "top_p", "seed"):
            value = getattr(self, name)
            if value is not None:
                changes[name] = value
        return spec.model_copy(update=changes) if changes else spec

    def options(self, options: SamplingOptions) -> SamplingOptions:
        """One call's options under this request: held to the cap, the request's stop
        sequences added, the penalties set."""
        changes: dict[str, object] = {}
        if self.max_tokens is not None:
            changes["max_tokens"] = min(options.max_tokens or self.max_tokens, self.max_tokens)
        if self.stop:
            changes["stop"] = tuple(dict.fromkeys((*options.stop, *self.stop)))
        if self.presence_penalty is not None:
            changes["presence_penalty"] = self.presence_penalty
        if self.frequency_penalty is not None:
            changes["frequency_penalty"] = self.frequency_penalty
        return options.model_copy(update=changes) if changes else options

    def member(self, member: Member) -> Member:
        """`member` with its settings under this request and every call held to it."""
        provider = SampledProvider(member.provider, self)
        return Member(spec=self.spec(member.spec), provider=provider, label=member.label)

    def panel(self, panel: Panel) -> Panel:
        """Every member, the aggregator and the fallback under this request."""
        return Panel(
            members=tuple(self.member(member) for member in panel.members),
            aggregator=self.member(panel.aggregator),
            fallback=self.member(panel.fallback) if panel.fallback is not None else None,
        )


_NOTHING = RequestSampling()


class SampledProvider(Provider):
    """A provider whose every call is held to a request's options. It does not own the
    provider it wraps: closing it closes nothing."""

    def __init__(self, inner: Provider, sampling: RequestSampling) -> None:
        self.inner = inner
        self.sampling = sampling
        self.name = inner.name
        self.capabilities = inner.capabilities
        self._held: dict[SamplingOptions, SamplingOptions] = {}

    async def complete(
        self, model: str, messages: Sequence[Message], options: SamplingOptions
    ) -> Completion:
        return await self.inner.complete(model, messages, self._options(options))

    def stream(
        self, model: str, messages: Sequence[Message], options: SamplingOptions
    ) -> AsyncIterator[StreamItem]:
        return self.inner.stream(model, messages, self._options(options))

    def _options(self, options: SamplingOptions) -> SamplingOptions:
        """`options` held to the request's, computed once per distinct options (a model asks
        with the same few every call)."""
        held = self._held.get(options)
        if held is None:
            if len(self._held) >= 64:
                self._held.clear()
            held = self._held[options] = self.sampling.options(options)
        return held

    async def list_models(self) -> list[ModelInfo]:
        return await self.inner.list_models()


class SampledEngines:
    """The engines of requests with options, per preset (by name) and options; at most
    `capacity` kept, the least recently used dropped first."""

    def __init__(self, capacity: int = 64) -> None:
        self._capacity = capacity
        self._engines: OrderedDict[tuple[str, RequestSampling], ConsensusEngine] = OrderedDict()

    def engine(
        self, preset_name: str, engine: ConsensusEngine, sampling: RequestSampling
    ) -> ConsensusEngine:
        """`engine` itself when no option is set; else its config and panel under the options,
        with its breakers."""
        if not sampling.given:
            return engine
        key = (preset_name, sampling)
        sampled = self._engines.pop(key, None)
        if sampled is None:
            panel = sampling.panel(engine.panel)
            sampled = ConsensusEngine(engine.config, panel, health=engine.health)
        self._engines[key] = sampled
        while len(self._engines) > self._capacity:
            self._engines.popitem(last=False)
        return sampled
