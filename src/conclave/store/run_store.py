"""`RunStore`: every run kept, for the CLI, the service and the page.

Writes go through a `BackgroundWriter` (never on the caller's path); until a run is in the
database this process still serves it from memory, so a client that asks for its transcript
right after its answer always finds it. Reads block, so the async methods run them in a thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from conclave.attestation.receipt_format import Receipt
from conclave.consensus.transcript import Transcript
from conclave.store.database import RunDatabase
from conclave.store.history import (
    RunListing,
    RunPage,
    RunQuery,
    RunSource,
    StoredRun,
    stored_run,
)
from conclave.store.store_settings import StoreSettings
from conclave.store.writer import LINGER_S, BackgroundWriter, PendingRun, Retention


class RunStore:
    """Runs in a database, written in the background (see the module docstring)."""

    def __init__(
        self,
        database: RunDatabase,
        *,
        retention: Retention,
        redact: Callable[[str], str] = str,
        source: RunSource = "http",
    ) -> None:
        self.database = database
        self.source: RunSource = source
        self._redact = redact
        self._pending: dict[str, Transcript] = {}
        self._lock = threading.Lock()
        database.migrate()
        self._writer = BackgroundWriter(database, retention, self._prepare, self._written)

    # --- writing --------------------------------------------------------------------------

    def record(self, transcript: Transcript, *, preset: str) -> None:
        """Keep `transcript` (returns at once; the write happens in the background)."""
        with self._lock:
            self._pending[transcript.id] = transcript
        self._writer.submit(PendingRun(transcript, preset))

    async def put(self, transcript: Transcript, *, preset: str) -> None:
        self.record(transcript, preset=preset)

    async def keep_receipt(self, receipt: Receipt) -> None:
        await asyncio.to_thread(self.database.keep_receipt, receipt)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every run recorded so far is written; False on timeout."""
        return self._writer.flush(timeout_s)

    # --- reading --------------------------------------------------------------------------

    def transcript(self, run_id: str) -> Transcript | None:
        """A kept run (blocking): from memory while it waits to be written, else the database."""
        with self._lock:
            pending = self._pending.get(run_id)
        return pending if pending is not None else self.database.transcript(run_id)

    async def get(self, transcript_id: str) -> Transcript | None:
        """A kept run. A run another process (worker) has just finished may still be in its
        writer's hands: on a miss, look once more after that writer's batch interval."""
        found = await asyncio.to_thread(self.transcript, transcript_id)
        if found is None:
            await asyncio.sleep(2 * LINGER_S)
            found = await asyncio.to_thread(self.transcript, transcript_id)
        return found

    def find(self, query: RunQuery) -> RunPage:
        return self.database.find(query)

    async def runs(self, query: RunQuery) -> RunPage:
        """The kept runs matching `query`, this process's runs still in the queue included
        (listing waits for them to be written)."""
        with self._lock:
            waiting = bool(self._pending)
        if waiting:
            await asyncio.to_thread(self._writer.flush, 5.0)
        return await asyncio.to_thread(self.database.find, query)

    def latest(self) -> RunListing | None:
        return self.database.latest()

    async def receipt(self, run_id: str) -> Receipt | None:
        return await asyncio.to_thread(self.database.receipt, run_id)

    # --- closing --------------------------------------------------------------------------

    def close(self) -> None:
        """Write what is queued, then let go of the database."""
        self._writer.close()
        self.database.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def _prepare(self, run: PendingRun) -> StoredRun:
        return stored_run(
            run.transcript, source=self.source, preset=run.preset, redact=self._redact
        )

    def _written(self, run_ids: list[str]) -> None:
        with self._lock:
            for run_id in run_ids:
                self._pending.pop(run_id, None)


def open_run_store(
    *,
    home: Path,
    settings: StoreSettings | None = None,
    redact: Callable[[str], str] = str,
    source: RunSource = "http",
) -> RunStore:
    """The store `settings` describe (SQLite under `home` by default), migrated and ready.

    Raises StoreError (a ConfigError) naming the database when it cannot be opened."""
    settings = settings or StoreSettings()
    database = RunDatabase(settings.database_url(home))
    retention = Retention(
        max_age=timedelta(days=settings.max_age_days), max_bytes=settings.max_bytes
    )
    try:
        return RunStore(database, retention=retention, redact=redact, source=source)
    except BaseException:
        database.close()
        raise
