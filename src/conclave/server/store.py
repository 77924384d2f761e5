"""Where the service keeps the transcripts of its runs, for `GET /v1/transcripts/{id}`.

`TranscriptStore` is the seam: the in-memory store below keeps the most recent ones; a
persistent store (SQLite) or a receipt issuer plugs in behind the same two methods.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from conclave.consensus.transcript import Transcript


class TranscriptStore(Protocol):
    """Keeps transcripts by id."""

    async def put(self, transcript: Transcript) -> None: ...

    async def get(self, transcript_id: str) -> Transcript | None: ...


class MemoryTranscriptStore:
    """The most recent transcripts, in memory: at most `capacity` of them (0 keeps none) and
    at most `max_bytes` of their text (the oldest go first; None: no byte budget)."""

    def __init__(self, capacity: int, *, max_bytes: int | None = None) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes_kept = 0
        self._transcripts: OrderedDict[str, tuple[Transcript, int]] = OrderedDict()

    async def put(self, transcript: Transcript) -> None:
        if self.capacity == 0:
            return
        size = transcript_text_bytes(transcript)
        if self.max_bytes is not None and size > self.max_bytes:
            return  # larger than the whole budget: keeping it would evict everything else
        previous = self._transcripts.pop(transcript.id, None)
        if previous is not None:
            self.bytes_kept -= previous[1]
        self._transcripts[transcript.id] = (transcript, size)
        self.bytes_kept += size
        while len(self._transcripts) > self.capacity or (
            self.max_bytes is not None and self.bytes_kept > self.max_bytes
        ):
            _, (_, evicted) = self._transcripts.popitem(last=False)
            self.bytes_kept -= evicted

    async def get(self, transcript_id: str) -> Transcript | None:
        kept = self._transcripts.get(transcript_id)
        return kept[0] if kept is not None else None

    def __len__(self) -> int:
        return len(self._transcripts)


def transcript_text_bytes(transcript: Transcript) -> int:
    """About what a transcript holds in memory: the characters of its messages and answers
    (a message shared between calls counts once, as it is one object). Fast: no JSON."""
    seen: set[int] = set()
    total = 0

    def count(text: str) -> None:
        nonlocal total
        if id(text) not in seen:
            seen.add(id(text))
            total += len(text)

    for message in transcript.conversation:
        count(message.content)
    for _, call in transcript.calls():
        for message in call.messages:
            count(message.content)
        count(call.text)
        if call.error is not None:
            count(call.error.message)
    count(transcript.answer)
    return total
