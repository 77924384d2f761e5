"""The one interface every model backend implements."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from typing import Literal

from conclave.types import Completion, Frozen, Message, ModelInfo, SamplingOptions, StreamItem

OutputConstraint = Literal["json_schema", "grammar"]
"""A way a backend can constrain what a model writes: to a JSON schema, or to a grammar."""


class ProviderCapabilities(Frozen):
    """What a provider can do beyond answering, for the code that would use it to ask."""

    token_probabilities: bool = False
    """Every answer asked for them (`SamplingOptions.logprobs`) carries its token probability.
    False where it depends on the server (an OpenAI-compatible one may or may not return
    them): a config asks for them per model with `logprobs`."""
    embedded: bool = False
    """The models run in this process, on this machine: a call's time is local compute that
    grows with its prompt and answer, with no upstream to stall or fail."""
    constrained_output: frozenset[OutputConstraint] = frozenset()
    """The output constraints the provider applies when a call asks for one."""


class Provider(abc.ABC):
    """A place models live: OpenRouter, an OpenAI-compatible URL, the embedded packs, a fake.

    `complete` and `stream` raise only `conclave.errors.ProviderError` subclasses (or
    `MissingCredentialsError` / `ModelPackMissingError` before any call is made).
    """

    name: str
    capabilities: ProviderCapabilities = ProviderCapabilities()
    """What this provider can do beyond answering (by default: nothing more)."""

    @abc.abstractmethod
    async def complete(
        self, model: str, messages: Sequence[Message], options: SamplingOptions
    ) -> Completion:
        """Answer the conversation with one completion."""

    @abc.abstractmethod
    def stream(
        self, model: str, messages: Sequence[Message], options: SamplingOptions
    ) -> AsyncIterator[StreamItem]:
        """Answer the conversation as TextDelta pieces, ending with one Completion."""

    @abc.abstractmethod
    async def list_models(self) -> list[ModelInfo]:
        """The models this provider offers."""

    async def aclose(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Release connections, threads and model weights."""
