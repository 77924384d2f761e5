"""Where the service keeps its runs, for `GET /v1/transcripts` and the page's history.

`TranscriptStore` is the seam. `conclave.store.RunStore` (SQLite or PostgreSQL, shared by every
worker and the CLI) is the default; `MemoryTranscriptStore` keeps the most recent runs of this
process in memory only, for `CONCLAVE_STORE_ENABLED=false`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from conclave.attestation.receipt_format import Receipt
from conclave.consensus.transcript import Transcript
from conclave.store.history import RunPage, RunQuery, StoredRun, stored_run


class TranscriptStore(Protocol):
    """Keeps runs (transcripts and receipts) and lists them."""

    async def put(self, transcript: Transcript, *, preset: str) -> None:
        """Keep a run; must not make the caller wait for a disk or a database."""
        ...

    async def get(self, transcript_id: str) -> Transcript | None: ...

    async def runs(self, query: RunQuery) -> RunPage: ...

    async def receipt(self, run_id: str) -> Receipt | None: ...

    async def keep_receipt(self, receipt: Receipt) -> None: ...

    async def aclose(self) -> None: ...


class MemoryTranscriptStore:
    """The most recent runs of this process, in memory: at most `capacity` of them (0 keeps
    none) and at most `max_bytes` of their text (the oldest go first; None: no byte budget)."""

    def __init__(self, capacity: int, *, max_bytes: int | None = None) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes_kept = 0
        self._runs: OrderedDict[str, tuple[Transcript, str, int]] = OrderedDict()
        self._receipts: dict[str, Receipt] = {}

    async def put(self, transcript: Transcript, *, preset: str) -> None:
        if self.capacity == 0:
            return
        size = transcript_text_bytes(transcript)
        if self.max_bytes is not None and size > self.max_bytes:
            return  # larger than the whole budget: keeping it would evict everything else
        previous = self._runs.pop(transcript.id, None)
        if previous is not None:
            self.bytes_kept -= previous[2]
        self._runs[transcript.id] = (transcript, preset, size)
        self.bytes_kept += size
        while len(self._runs) > self.capacity or (
            self.max_bytes is not None and self.bytes_kept > self.max_bytes
        ):
            evicted_id, (_, _, evicted) = self._runs.popitem(last=False)
            self.bytes_kept -= evicted
            self._receipts.pop(evicted_id, None)

    async def get(self, transcript_id: str) -> Transcript | None:
        kept = self._runs.get(transcript_id)
        return kept[0] if kept is not None else None

    async def runs(self, query: RunQuery) -> RunPage:
        kept = (
            stored_run(transcript, source="http", preset=preset)
            for transcript, preset, _ in reversed(self._runs.values())
        )
        matching = [run.summary for run in kept if _admits(run, query)]
        return RunPage(
            runs=tuple(matching[query.offset : query.offset + query.limit]),
            total=len(matching),
            limit=query.limit,
            offset=query.offset,
        )

    async def receipt(self, run_id: str) -> Receipt | None:
        return self._receipts.get(run_id)

    async def keep_receipt(self, receipt: Receipt) -> None:
        if receipt.transcript_id in self._runs:
            self._receipts[receipt.transcript_id] = receipt

    async def aclose(self) -> None:
        self._runs.clear()
        self.bytes_kept = 0

    def __len__(self) -> int:
        return len(self._runs)


def _admits(run: StoredRun, query: RunQuery) -> bool:
    summary = run.summary
    return (
        (query.preset is None or summary.preset == query.preset)
        and (query.strategy is None or summary.strategy == query.strategy)
        and (query.thread_id is None or summary.thread_id == query.thread_id)
        and (query.since is None or summary.created_at >= query.since)
        and (query.until is None or summary.created_at < query.until)
        and all(word in run.search_text for word in query.words)
    )


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
