"""The one database layer under the store: SQLAlchemy Core over SQLite or PostgreSQL.

Every statement here is written once and runs on both; the dialects differ only in how a
connection is set up (SQLite: WAL, a busy timeout, `BEGIN IMMEDIATE` for writes) and in the
lock taken while migrating (see `schema.migrate`). All methods block: the server calls them
from a writer thread or `asyncio.to_thread`, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    true,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from conclave.attestation.receipt_format import Receipt
from conclave.consensus.transcript import Transcript
from conclave.errors import ConfigError
from conclave.store.history import RunListing, RunPage, RunQuery, StoredRun
from conclave.store.schema import MIGRATIONS, Migration, migrate, receipts, runs

SQLITE_BUSY_TIMEOUT_MS = 10_000
_WRITE = {"conclave_write": True}


class StoreError(ConfigError):
    """The store's database cannot be opened or used (named, with what to do)."""


class RunDatabase:
    """Runs, their transcripts and receipts in one database (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:"):
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create {folder} for the run store: {exc.strerror or exc}; set "
                    "CONCLAVE_HOME or CONCLAVE_STORE_URL to a place you can write"
                ) from exc
        try:
            self.engine: Engine = create_engine(url, pool_pre_ping=self.dialect != "sqlite")
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"cannot use the run store at {_shown(url)}: {exc}") from exc
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)

    def migrate(self, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
        """Bring the schema up to date; returns the migrations applied now."""
        try:
            with self._writing() as connection:
                return migrate(connection, migrations)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open the run store at {_shown(self.url)}: {_reason(exc)}; set "
                "CONCLAVE_STORE_URL to a database you can write, or CONCLAVE_STORE_ENABLED=false"
            ) from exc

    def write(self, batch: Sequence[StoredRun]) -> list[RunListing]:
        """Insert runs (a run already kept is left as it is); returns their summaries with
        each run's thread resolved. One statement for the batch, plus one per run that
        continues a conversation."""
        with self._writing() as connection:
            ids = [run.summary.id for run in batch]
            kept = set(connection.execute(select(runs.c.id).where(runs.c.id.in_(ids))).scalars())
            fresh = [run for run in batch if run.summary.id not in kept]
            placed: dict[str, RunListing] = {}  # by next_key: this batch's runs, threaded
            summaries = []
            for run in fresh:
                summary = _in_thread(connection, run, placed)
                placed[run.next_key] = summary
                summaries.append(summary)
            if fresh:
                rows = [_row(run, summary) for run, summary in zip(fresh, summaries, strict=True)]
                connection.execute(insert(runs), rows)
        return summaries

    def keep_receipt(self, receipt: Receipt) -> None:
        with self._writing() as connection:
            kept = select(receipts.c.run_id).where(receipts.c.run_id == receipt.transcript_id)
            if connection.execute(kept).first() is None:
                connection.execute(
                    insert(receipts).values(
                        run_id=receipt.transcript_id,
                        created_at=_naive_utc(receipt.created_at),
                        mode=receipt.mode,
                        receipt=receipt.model_dump_json(),
                    )
                )

    def receipt(self, run_id: str) -> Receipt | None:
        with self.engine.connect() as connection:
            text = connection.execute(
                select(receipts.c.receipt).where(receipts.c.run_id == run_id)
            ).scalar()
        return None if text is None else Receipt.model_validate_json(text)

    def transcript(self, run_id: str) -> Transcript | None:
        with self.engine.connect() as connection:
            text = connection.execute(select(runs.c.transcript).where(runs.c.id == run_id)).scalar()
        return None if text is None else Transcript.model_validate_json(text)

    def summary(self, run_id: str) -> RunListing | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(*_SUMMARY).where(runs.c.id == run_id)).first()
        return None if row is None else _summary(row._mapping)

    def find(self, query: RunQuery) -> RunPage:
        """The runs matching `query`, newest first."""
        where = _conditions(query)
        with self.engine.connect() as connection:
            total = connection.execute(select(func.count()).select_from(runs).where(where)).scalar()
            rows = connection.execute(
                select(*_SUMMARY)
                .where(where)
                .order_by(runs.c.created_at.desc(), runs.c.id.desc())
                .limit(query.limit)
                .offset(query.offset)
            ).all()
        return RunPage(
            runs=tuple(_summary(row._mapping) for row in rows),
            total=total or 0,
            limit=query.limit,
            offset=query.offset,
        )

    def ids_starting(self, prefix: str, *, limit: int) -> list[str]:
        """The ids of kept runs that start with `prefix` (at most `limit`)."""
        pattern = f"{_escape_like(prefix)}%"
        with self.engine.connect() as connection:
            found = connection.execute(
                select(runs.c.id).where(runs.c.id.like(pattern, escape="\\")).limit(limit)
            )
            return list(found.scalars())

    def latest(self) -> RunListing | None:
        """The most recent run of all."""
        page = self.find(RunQuery(limit=1))
        return page.runs[0] if page.runs else None

    def prune(self, *, max_age: timedelta, max_bytes: int, now: datetime | None = None) -> int:
        """Delete runs older than `max_age`, then the oldest while the kept transcripts
        exceed `max_bytes`; returns how many runs were deleted."""
        cutoff = _naive_utc((now or datetime.now(UTC)) - max_age)
        newest_first = select(
            runs.c.id,
            func.sum(runs.c.size_bytes)
            .over(order_by=(runs.c.created_at.desc(), runs.c.id.desc()))
            .label("kept_bytes"),
        ).subquery()
        too_many = select(newest_first.c.id).where(newest_first.c.kept_bytes > max_bytes)
        with self._writing() as connection:
            deleted = connection.execute(delete(runs).where(runs.c.created_at < cutoff)).rowcount
            deleted += connection.execute(delete(runs).where(runs.c.id.in_(too_many))).rowcount
            connection.execute(delete(receipts).where(receipts.c.run_id.not_in(select(runs.c.id))))
        return int(deleted)

    def close(self) -> None:
        self.engine.dispose()

    def _writing(self) -> Any:
        """A transaction that writes (on SQLite: taken with `BEGIN IMMEDIATE`)."""
        return self.engine.execution_options(**_WRITE).begin()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _: object) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below, not by pysqlite
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        # A write transaction takes the write lock up front, so two processes never deadlock
        # upgrading read locks; the busy timeout makes the second one wait its turn.
        writes = connection.get_execution_options().get("conclave_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


_SUMMARY = (
    runs.c.id,
    runs.c.created_at,
    runs.c.source,
    runs.c.preset,
    runs.c.strategy,
    runs.c.thread_id,
    runs.c.turn,
    runs.c.prompt,
    runs.c.answer,
    runs.c.stop_reason,
    runs.c.ok,
    runs.c.calls,
    runs.c.failed_calls,
    runs.c.rounds,
    runs.c.cost_usd,
    runs.c.duration_s,
)


def _summary(row: Any) -> RunListing:
    values = dict(row)
    values["created_at"] = values["created_at"].replace(tzinfo=UTC)
    return RunListing.model_validate(values)


def _row(run: StoredRun, summary: RunListing) -> dict[str, object]:
    values = summary.model_dump()
    values["created_at"] = _naive_utc(summary.created_at)
    return {
        **values,
        "search_text": run.search_text,
        "continues_key": run.continues_key,
        "next_key": run.next_key,
        "size_bytes": len(run.transcript_json.encode()),
        "transcript": run.transcript_json,
    }


def _in_thread(connection: Connection, run: StoredRun, placed: dict[str, RunListing]) -> RunListing:
    """The run's summary placed in the thread it continues, if any (a kept run, or one
    `placed` earlier in the same batch)."""
    if run.continues_key is None:
        return run.summary
    earlier = placed.get(run.continues_key)
    if earlier is not None:
        thread_id, turn = earlier.thread_id, earlier.turn
    else:
        found = connection.execute(
            select(runs.c.thread_id, runs.c.turn)
            .where(runs.c.next_key == run.continues_key)
            .order_by(runs.c.created_at.desc())
            .limit(1)
        ).first()
        if found is None:
            return run.summary
        thread_id, turn = found.thread_id, found.turn
    return run.summary.model_copy(update={"thread_id": thread_id, "turn": turn + 1})


def _conditions(query: RunQuery) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if query.preset:
        conditions.append(runs.c.preset == query.preset)
    if query.strategy:
        conditions.append(runs.c.strategy == query.strategy)
    if query.thread_id:
        conditions.append(runs.c.thread_id == query.thread_id)
    if query.since:
        conditions.append(runs.c.created_at >= _naive_utc(query.since))
    if query.until:
        conditions.append(runs.c.created_at < _naive_utc(query.until))
    for word in query.words:
        conditions.append(runs.c.search_text.like(f"%{_escape_like(word)}%", escape="\\"))
    return and_(true(), *conditions)


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def _reason(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]
