"""Reading a provider's stream in tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

from conclave.types import Completion, TextDelta


async def collect(
    items: AsyncIterator[TextDelta | Completion],
    into: list[TextDelta | Completion] | None = None,
) -> list[TextDelta | Completion]:
    """Every item of a stream, also appended to `into` as it arrives (to see what came before
    an error)."""
    received = [] if into is None else into
    async for item in items:
        received.append(item)
    return received
