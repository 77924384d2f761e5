"""A panel: the members that answer and the aggregator that combines, each bound to a provider."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from conclave.config import ConsensusConfig, ModelSpec
from conclave.providers.base import Provider
from conclave.providers.registry import ProviderRegistry
from conclave.types import Completion, JsonSchema, Message, SamplingOptions, StreamItem


@dataclass(frozen=True)
class Member:
    """One model of the panel (or the aggregator), bound to the provider that serves it."""

    spec: ModelSpec
    provider: Provider
    label: str
    json_schema: JsonSchema | None = None
    """When set, every answer is JSON satisfying it (see SamplingOptions.json_schema)."""

    @cached_property
    def sampling(self) -> SamplingOptions:
        """The options every call of this member is made with (built once: the spec and the
        schema are frozen)."""
        sampling = self.spec.sampling
        if self.json_schema is None:
            return sampling
        return sampling.model_copy(update={"json_schema": self.json_schema})

    async def complete(self, messages: Sequence[Message]) -> Completion:
        """The provider's answer as it gave it (the providers time their own calls; a call's
        record times the whole call, retries included)."""
        return await self.provider.complete(self.spec.model_name, messages, self.sampling)

    def stream(self, messages: Sequence[Message]) -> AsyncIterator[StreamItem]:
        return self.provider.stream(self.spec.model_name, messages, self.sampling)

    def variant(self, label: str, **spec_changes: object) -> Member:
        """The same model on the same provider, under `label`, with some settings changed."""
        return replace(self, spec=self.spec.model_copy(update=spec_changes), label=label)

    def constrained(self, schema: JsonSchema | None) -> Member:
        """The same member, answering with JSON that satisfies `schema` (freely with None)."""
        return replace(self, json_schema=schema)


@dataclass(frozen=True)
class Panel:
    """The members, in config order, the aggregator, and the fallback aggregator if any."""

    members: tuple[Member, ...]
    aggregator: Member
    fallback: Member | None = None

    @property
    def providers(self) -> tuple[Provider, ...]:
        unique: dict[int, Provider] = {}
        fallback = (self.fallback,) if self.fallback else ()
        for member in (*self.members, self.aggregator, *fallback):
            unique.setdefault(id(member.provider), member.provider)
        return tuple(unique.values())

    async def aclose(self) -> None:
        """Close every provider once, even if one of them fails to close."""
        await asyncio.gather(*(p.aclose() for p in self.providers), return_exceptions=True)


def unique_labels(specs: Sequence[ModelSpec]) -> tuple[str, ...]:
    """Display names, numbered where the same model sits in the panel more than once."""
    names = [spec.display_name for spec in specs]
    labels: list[str] = []
    for index, name in enumerate(names):
        if names.count(name) > 1:
            labels.append(f"{name} #{names[: index + 1].count(name)}")
        else:
            labels.append(name)
    return tuple(labels)


def panel_member_of(call_label: str, labels: Collection[str]) -> str | None:
    """The panel member (one of `labels`) a call's label belongs to: its own, or the member
    whose extra draw it is (`sample` and `adaptive` label draws "<member> #<n>")."""
    if call_label in labels:
        return call_label
    member, hash_sign, number = call_label.rpartition(" #")
    return member if hash_sign and number.isdigit() and member in labels else None


def build_panel(config: ConsensusConfig, registry: ProviderRegistry) -> Panel:
    """Bind every model of the config to the provider that serves it."""
    labels = unique_labels(config.models)
    members = tuple(
        Member(spec=spec, provider=registry.provider_for(spec), label=label)
        for spec, label in zip(config.models, labels, strict=True)
    )
    aggregator_spec = config.aggregator_spec.model
    aggregator = Member(
        spec=aggregator_spec,
        provider=registry.provider_for(aggregator_spec),
        label=f"{aggregator_spec.display_name} (aggregator)",
    )
    fallback = None
    if config.fallback_aggregator is not None:
        fallback = Member(
            spec=config.fallback_aggregator,
            provider=registry.provider_for(config.fallback_aggregator),
            label=f"{config.fallback_aggregator.display_name} (fallback aggregator)",
        )
    return Panel(members=members, aggregator=aggregator, fallback=fallback)
