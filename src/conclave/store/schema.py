"""The store's tables and its named migrations.

Each migration has a name, is applied once per database (recorded in `schema_migrations`) and
is idempotent in itself (`IF NOT EXISTS`), so that processes starting together (`--workers`)
or an interrupted start never leave a database half-migrated. New changes are new migrations
appended to `MIGRATIONS`; an applied one is never edited.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Connection

metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("applied_at", DateTime, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    # UTC without a zone: SQLite keeps none, so both databases hold the same values.
    Column("created_at", DateTime, nullable=False),
    Column("source", String(16), nullable=False),
    Column("preset", String(200), nullable=False),
    Column("strategy", String(100)),
    Column("thread_id", String(64), nullable=False),
    Column("turn", Integer, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("stop_reason", String(32)),
    Column("ok", Boolean, nullable=False),
    Column("calls", Integer, nullable=False),
    Column("failed_calls", Integer, nullable=False),
    Column("rounds", Integer, nullable=False),
    Column("cost_usd", Float),
    Column("duration_s", Float, nullable=False),
    Column("search_text", Text, nullable=False),
    Column("continues_key", String(64)),
    Column("next_key", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("transcript", Text, nullable=False),
    Index("ix_runs_created_at", "created_at"),
    Index("ix_runs_thread", "thread_id", "turn"),
    Index("ix_runs_next_key", "next_key"),
    Index("ix_runs_preset", "preset"),
)

receipts = Table(
    "receipts",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Column("mode", String(32), nullable=False),
    Column("receipt", Text, nullable=False),
)


def _create_runs(connection: Connection) -> None:
    runs.create(connection, checkfirst=True)
    for index in runs.indexes:
        index.create(connection, checkfirst=True)


def _create_receipts(connection: Connection) -> None:
    receipts.create(connection, checkfirst=True)


Migration = tuple[str, Callable[[Connection], None]]

MIGRATIONS: tuple[Migration, ...] = (
    ("0001_runs", _create_runs),
    ("0002_receipts", _create_receipts),
)


def migrate(connection: Connection) -> list[str]:
    """Apply the migrations this database lacks, in order; returns their names.

    Runs inside the caller's transaction. On PostgreSQL an advisory lock makes concurrent
    starts take turns; on SQLite the write lock (with the busy timeout) does the same."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(7263101)"))
    schema_migrations.create(connection, checkfirst=True)
    applied = set(connection.execute(select(schema_migrations.c.name)).scalars())
    done = []
    for name, apply in MIGRATIONS:
        if name in applied:
            continue
        apply(connection)
        connection.execute(
            insert(schema_migrations).values(
                name=name, applied_at=datetime.now(UTC).replace(tzinfo=None)
            )
        )
        done.append(name)
    return done
