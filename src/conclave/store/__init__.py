"""Every run kept: transcripts, per-call timings, failures and receipts in SQLite (a file under
`CONCLAVE_HOME`) or PostgreSQL (`CONCLAVE_STORE_URL`), through one SQLAlchemy Core layer.

- `open_run_store()` opens (and migrates) the store the environment names;
- `RunStore.record()` keeps a transcript without waiting (a background thread writes it);
- `RunStore.find()` / `runs()` list runs by preset, strategy, date, words or thread;
- `RunDatabase` is the layer under it; `schema.MIGRATIONS` its named migrations.
"""

from conclave.store.database import RunDatabase, StoreError
from conclave.store.history import (
    RunListing,
    RunPage,
    RunQuery,
    RunSource,
    StoredRun,
    continued_conversation,
    conversation_key,
    stored_run,
)
from conclave.store.run_store import RunStore, open_run_store
from conclave.store.store_settings import StoreSettings
from conclave.store.writer import BackgroundWriter, Retention

__all__ = [
    "BackgroundWriter",
    "Retention",
    "RunDatabase",
    "RunListing",
    "RunPage",
    "RunQuery",
    "RunSource",
    "RunStore",
    "StoreError",
    "StoreSettings",
    "StoredRun",
    "continued_conversation",
    "conversation_key",
    "open_run_store",
    "stored_run",
]
