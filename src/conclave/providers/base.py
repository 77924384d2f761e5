"""The one interface every model backend implements."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence

from conclave.types import Completion, Message, ModelInfo, SamplingOptions, StreamItem


class Provider(abc.ABC):
    """A place models live: OpenRouter, an OpenAI-compatible URL, the embedded packs, a fake.

    `complete` and `stream` raise only `conclave.errors.ProviderError` subclasses (or
    `MissingCredentialsError` / `ModelPackMissingError` before any call is made).
    """

    name: str

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
