"""The store's tables and its named migrations.

Two descriptions of one schema, each with its own job:

- `MIGRATIONS` builds it: each migration is a name and fixed DDL text, written once and never
  edited after it shipped, so that a database is built by the same statements whenever it is
  created. A change is a new migration appended at the end (`ALTER TABLE runs ADD COLUMN ...`);
  a fresh database runs every migration in order, an existing one only those it lacks.
- The `Table` objects describe the schema as the code reads and writes it today (SQLAlchemy Core
  builds the queries from them). They never create anything, so adding a column here cannot
  change what an earlier migration builds; a test checks that the migrations build these tables.

Each migration is applied once per database (recorded in `schema_migrations`) and is idempotent
in itself (`IF NOT EXISTS`), so that processes starting together (`--workers`) or an interrupted
start never leave a database half-migrated. The DDL runs as written on SQLite and PostgreSQL
alike; the one type they spell differently, a UTC time without a zone, is `{timestamp}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, NamedTuple

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


class Migration(NamedTuple):
    """A named schema change: fixed DDL statements, run in order."""

    name: str
    statements: tuple[str, ...]


TIMESTAMP_TYPE: Final = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP WITHOUT TIME ZONE"}
"""How each database spells `{timestamp}`: UTC without a zone (SQLite keeps none, so both
databases hold the same values)."""

_SCHEMA_MIGRATIONS_DDL: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name VARCHAR(100) NOT NULL,
    applied_at {timestamp} NOT NULL,
    PRIMARY KEY (name)
)"""

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        "0001_runs",
        (
            """
CREATE TABLE IF NOT EXISTS runs (
    id VARCHAR(64) NOT NULL,
    created_at {timestamp} NOT NULL,
    source VARCHAR(16) NOT NULL,
    preset VARCHAR(200) NOT NULL,
    strategy VARCHAR(100),
    thread_id VARCHAR(64) NOT NULL,
    turn INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    stop_reason VARCHAR(32),
    ok BOOLEAN NOT NULL,
    calls INTEGER NOT NULL,
    failed_calls INTEGER NOT NULL,
    rounds INTEGER NOT NULL,
    cost_usd FLOAT,
    duration_s FLOAT NOT NULL,
    search_text TEXT NOT NULL,
    continues_key VARCHAR(64),
    next_key VARCHAR(64) NOT NULL,
    size_bytes INTEGER NOT NULL,
    transcript TEXT NOT NULL,
    PRIMARY KEY (id)
)""",
            "CREATE INDEX IF NOT EXISTS ix_runs_created_at ON runs (created_at)",
            "CREATE INDEX IF NOT EXISTS ix_runs_thread ON runs (thread_id, turn)",
            "CREATE INDEX IF NOT EXISTS ix_runs_next_key ON runs (next_key)",
            "CREATE INDEX IF NOT EXISTS ix_runs_preset ON runs (preset)",
        ),
    ),
    Migration(
        "0002_receipts",
        (
            """
CREATE TABLE IF NOT EXISTS receipts (
    run_id VARCHAR(64) NOT NULL,
    created_at {timestamp} NOT NULL,
    mode VARCHAR(32) NOT NULL,
    receipt TEXT NOT NULL,
    PRIMARY KEY (run_id)
)""",
        ),
    ),
)

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


def migrate(connection: Connection, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply the migrations this database lacks, in order; returns their names.

    Runs inside the caller's transaction. On PostgreSQL an advisory lock makes concurrent
    starts take turns; on SQLite the write lock (with the busy timeout) does the same."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(7263101)"))
    _run(connection, _SCHEMA_MIGRATIONS_DDL)
    applied = set(connection.execute(select(schema_migrations.c.name)).scalars())
    done = []
    for migration in migrations:
        if migration.name in applied:
            continue
        for statement in migration.statements:
            _run(connection, statement)
        connection.execute(
            insert(schema_migrations).values(
                name=migration.name, applied_at=datetime.now(UTC).replace(tzinfo=None)
            )
        )
        done.append(migration.name)
    return done


def _run(connection: Connection, statement: str) -> None:
    ddl = statement.replace("{timestamp}", TIMESTAMP_TYPE[connection.dialect.name])
    connection.exec_driver_sql(ddl.strip())
