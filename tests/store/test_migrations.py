"""The store's migrations are fixed DDL: they build the tables the queries use, on SQLite and on
PostgreSQL, and a migration added later (a new column) applies to a fresh database and to one
that already holds runs, whatever today's `Table` objects say."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Text, inspect

from conclave.store import RunDatabase, StoreSettings, schema, stored_run
from conclave.store.schema import MIGRATIONS, Migration

from .runs_helpers import run_consensus

LATER = (*MIGRATIONS, Migration("0003_runs_note", ("ALTER TABLE runs ADD COLUMN note TEXT",)))
"""Today's migrations and one more, as the next change to the schema would add it."""


def opened(database_url: str, tmp_path: Path) -> RunDatabase:
    return RunDatabase(StoreSettings(url=database_url, _env_file=None).database_url(tmp_path))


def columns(database: RunDatabase, table: str) -> dict[str, bool]:
    """The table's columns in the database, with whether each may be null."""
    found = inspect(database.engine).get_columns(table)
    return {column["name"]: column["nullable"] for column in found}


def test_the_migrations_build_the_tables_the_queries_use(database_url: str, tmp_path: Path) -> None:
    database = opened(database_url, tmp_path)
    try:
        database.migrate()
        inspector = inspect(database.engine)
        for table in (schema.schema_migrations, schema.runs, schema.receipts):
            built = {column["name"]: column for column in inspector.get_columns(table.name)}
            assert list(built) == [column.name for column in table.columns], table.name
            for declared in table.columns:
                column = built[declared.name]
                assert column["nullable"] == declared.nullable, declared
                assert isinstance(column["type"], type(declared.type)), declared
                if isinstance(declared.type, String):
                    assert getattr(column["type"], "length", None) == declared.type.length
            primary_key = inspector.get_pk_constraint(table.name)["constrained_columns"]
            assert primary_key == [column.name for column in table.primary_key.columns]
            indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes(table.name)}
            assert indexes == {ix.name: [c.name for c in ix.columns] for ix in table.indexes}
    finally:
        database.close()


async def test_a_later_migration_applies_on_a_database_that_holds_runs(
    database_url: str, tmp_path: Path
) -> None:
    database = opened(database_url, tmp_path)
    try:
        assert database.migrate() == [migration.name for migration in MIGRATIONS]
        transcript = await run_consensus("What is the capital of France?")
        database.write([stored_run(transcript, source="cli", preset="panel")])

        assert database.migrate(LATER) == ["0003_runs_note"]
        assert columns(database, "runs")["note"] is True
        assert database.transcript(transcript.id) == transcript
        assert database.migrate(LATER) == []
    finally:
        database.close()


async def test_a_later_migration_applies_on_a_fresh_database_after_the_tables_changed(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The code's description of `runs` gains the column too, as it would with the migration;
    # the first migration still builds the table it always built, and the new one adds to it.
    runs_today = schema.runs.to_metadata(MetaData())
    runs_today.append_column(Column("note", Text))
    monkeypatch.setattr(schema, "runs", runs_today)
    database = opened(database_url, tmp_path)
    try:
        assert database.migrate(LATER) == [migration.name for migration in LATER]
        assert set(columns(database, "runs")) == {column.name for column in runs_today.columns}
        transcript = await run_consensus("What is the capital of Peru?")
        database.write([stored_run(transcript, source="http", preset="panel")])
        assert database.transcript(transcript.id) == transcript
    finally:
        database.close()
