"""The run store on SQLite and on a real PostgreSQL: what is kept comes back whole, the
history filters and pages, conversations become threads, retention deletes the oldest,
secrets are never written, and migrations are named and idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from conclave.attestation.receipts import NoAttester, issue_receipt
from conclave.errors import ConfigError
from conclave.redaction import Redactor
from conclave.store import (
    RunDatabase,
    RunQuery,
    RunStore,
    StoreSettings,
    continued_conversation,
    open_run_store,
    stored_run,
)
from conclave.store.schema import MIGRATIONS, runs, schema_migrations
from conclave.types import Message

from .runs_helpers import run_consensus


def settings_for(url: str) -> StoreSettings:
    return StoreSettings(url=url, _env_file=None)


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[RunStore]:
    opened = open_run_store(home=tmp_path, settings=settings_for(database_url))
    yield opened
    opened.close()


async def test_a_kept_run_comes_back_whole_with_its_failures_and_timings(store: RunStore) -> None:
    transcript = await run_consensus("Capital of France?", failing_member=True)
    store.record(transcript, preset="panel")
    assert store.flush()

    kept = store.database.transcript(transcript.id)
    assert kept == transcript
    failed = [call for call in kept.rounds[0].responses if not call.ok]
    assert [call.model for call in failed] == ["b"]
    assert failed[0].error is not None
    assert failed[0].error.status_code == 503
    assert all(call.latency_s >= 0 for call in kept.rounds[0].responses)

    [summary] = store.find(RunQuery()).runs
    assert summary.prompt == "Capital of France?"
    assert summary.answer == transcript.answer
    assert (summary.preset, summary.source, summary.ok) == ("panel", "http", True)
    assert (summary.calls, summary.failed_calls, summary.rounds) == (8, 2, 2)


async def test_the_history_filters_by_preset_strategy_date_and_words(store: RunStore) -> None:
    paris = await run_consensus("Capital of France?", answer="Paris.", name="fast")
    berlin = await run_consensus("Capital of Germany?", answer="Berlin.", name="slow")
    voted = (await run_consensus("Largest planet?", answer="Jupiter.")).model_copy(
        update={"config": {"name": "panel", "strategy": "vote"}}
    )
    for transcript, preset in ((paris, "fast"), (berlin, "slow"), (voted, "panel")):
        store.record(transcript, preset=preset)
    store.flush()

    def ids(**filters: object) -> list[str]:
        return [run.id for run in store.find(RunQuery.model_validate(filters)).runs]

    assert ids() == [voted.id, berlin.id, paris.id]  # newest first
    assert ids(preset="slow") == [berlin.id]
    assert ids(strategy="vote") == [voted.id]
    assert ids(text="GERMANY capital") == [berlin.id]  # every word, any case
    assert ids(text="capital jupiter") == []
    assert ids(text="100%_") == []  # LIKE's wildcards are plain characters here
    assert ids(since=berlin.created_at) == [voted.id, berlin.id]
    assert ids(until=berlin.created_at) == [paris.id]
    assert ids(since=datetime.now(UTC) + timedelta(days=1)) == []


async def test_the_history_pages(store: RunStore) -> None:
    made = [await run_consensus(f"Question {n}?") for n in range(5)]
    for transcript in made:
        store.record(transcript, preset="panel")
    store.flush()
    first = store.find(RunQuery(limit=2))
    last = store.find(RunQuery(limit=2, offset=4))
    assert (first.total, first.has_more, last.has_more) == (5, True, False)
    assert [run.id for run in first.runs] == [made[4].id, made[3].id]
    assert [run.id for run in last.runs] == [made[0].id]


async def test_turns_of_a_conversation_form_one_thread(store: RunStore) -> None:
    first = await run_consensus("Capital of France?")
    second = await run_consensus(
        [*continued_conversation(first), Message(role="user", content="And its population?")]
    )
    unrelated = await run_consensus("Capital of Spain?")
    for transcript in (first, second, unrelated):
        store.record(transcript, preset="panel")
    store.flush()

    thread = store.find(RunQuery(thread_id=first.id)).runs
    assert [(run.id, run.turn) for run in thread] == [(second.id, 1), (first.id, 0)]
    assert store.find(RunQuery(thread_id=unrelated.id)).total == 1


async def test_a_run_is_readable_before_and_after_it_is_written(store: RunStore) -> None:
    transcript = await run_consensus("Capital of France?")
    store.record(transcript, preset="panel")
    assert await store.get(transcript.id) == transcript  # from memory or from the database
    store.flush()
    assert await store.get(transcript.id) == transcript
    assert await store.get("no-such-run") is None


async def test_receipts_are_kept_once(store: RunStore) -> None:
    transcript = await run_consensus("Capital of France?")
    store.record(transcript, preset="panel")
    receipt = await issue_receipt(transcript, NoAttester())
    await store.keep_receipt(receipt)
    await store.keep_receipt(await issue_receipt(transcript, NoAttester()))
    assert await store.receipt(transcript.id) == receipt


async def test_retention_deletes_old_runs_then_the_oldest_over_the_size(store: RunStore) -> None:
    made = [await run_consensus(f"Question {n}?") for n in range(4)]
    old = made[0].model_copy(update={"created_at": datetime.now(UTC) - timedelta(days=40)})
    for transcript in (old, *made[1:]):
        store.record(transcript, preset="panel")
    store.flush()
    database = store.database

    assert database.prune(max_age=timedelta(days=30), max_bytes=10**9) == 1
    one_run = len(made[3].to_json(indent=None).encode())
    assert database.prune(max_age=timedelta(days=30), max_bytes=int(2.5 * one_run)) == 1
    assert [run.id for run in store.find(RunQuery()).runs] == [made[3].id, made[2].id]


async def test_secrets_are_never_written(database_url: str, tmp_path: Path) -> None:
    secret = "sk-or-v1-very-secret-key"
    store = open_run_store(
        home=tmp_path, settings=settings_for(database_url), redact=Redactor([secret])
    )
    try:
        transcript = await run_consensus(f"Is {secret} a good key? Bearer abc.def.ghi")
        store.record(transcript, preset="panel")
        store.flush()
        with store.database.engine.connect() as connection:
            row = connection.execute(select(runs.c.transcript, runs.c.prompt)).one()
        assert secret not in row.transcript
        assert secret not in row.prompt
        assert "abc.def.ghi" not in row.transcript
        assert "[redacted]" in row.prompt
    finally:
        store.close()


def test_migrations_are_named_and_applied_once(database_url: str, tmp_path: Path) -> None:
    url = settings_for(database_url).database_url(tmp_path)
    first, second = RunDatabase(url), RunDatabase(url)
    try:
        assert first.migrate() == [name for name, _ in MIGRATIONS]
        assert second.migrate() == []
        with first.engine.connect() as connection:
            applied = connection.execute(select(schema_migrations.c.name)).scalars().all()
        assert sorted(applied) == sorted(name for name, _ in MIGRATIONS)
    finally:
        first.close()
        second.close()


async def test_two_processes_stores_share_one_database(database_url: str, tmp_path: Path) -> None:
    one = open_run_store(home=tmp_path, settings=settings_for(database_url))
    two = open_run_store(home=tmp_path, settings=settings_for(database_url))
    try:
        mine, theirs = await run_consensus("One?"), await run_consensus("Two?")
        one.record(mine, preset="panel")
        two.record(theirs, preset="panel")
        one.flush()
        two.flush()
        assert await one.get(theirs.id) == theirs
        assert await two.get(mine.id) == mine
        assert one.find(RunQuery()).total == 2
    finally:
        one.close()
        two.close()


def test_a_bad_store_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CONCLAVE_STORE_URL"):
        settings_for("mysql://someone@host/db").database_url(tmp_path)
    with pytest.raises(ConfigError, match="cannot open the run store"):
        open_run_store(home=tmp_path, settings=settings_for("postgresql://nobody@127.0.0.1:1/x"))
    with pytest.raises(ConfigError, match="cannot create /proc/nope for the run store"):
        open_run_store(home=tmp_path, settings=settings_for("sqlite:////proc/nope/runs.db"))


async def test_a_thread_is_followed_within_one_batch_of_writes(store: RunStore) -> None:
    first = await run_consensus("Capital of France?")
    second = await run_consensus(
        [*continued_conversation(first), Message(role="user", content="Population?")]
    )
    third = await run_consensus(
        [*continued_conversation(second), Message(role="user", content="And its mayor?")]
    )
    batch = [stored_run(t, source="cli", preset="panel") for t in (first, second, third)]
    written = store.database.write(batch)
    assert [(run.thread_id, run.turn) for run in written] == [
        (first.id, 0),
        (first.id, 1),
        (first.id, 2),
    ]
    assert store.database.write(batch) == []  # a run already kept is not written twice
