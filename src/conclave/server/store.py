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
    """The `capacity` most recent transcripts, in memory (0 keeps none)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._transcripts: OrderedDict[str, Transcript] = OrderedDict()

    async def put(self, transcript: Transcript) -> None:
        if self.capacity == 0:
            return
        self._transcripts[transcript.id] = transcript
        self._transcripts.move_to_end(transcript.id)
        while len(self._transcripts) > self.capacity:
            self._transcripts.popitem(last=False)

    async def get(self, transcript_id: str) -> Transcript | None:
        return self._transcripts.get(transcript_id)

    def __len__(self) -> int:
        return len(self._transcripts)
