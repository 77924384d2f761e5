"""The command line's side of the run store: keeping each `ask`, `chat` and `batch` run,
opening the store to read it (`conclave log`), and the last conversation for `chat --continue`.
The same store the service writes (`CONCLAVE_STORE_URL`, else SQLite under `CONCLAVE_HOME`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.markup import escape

from conclave.cli.common import err, fail
from conclave.config import ConsensusConfig
from conclave.consensus.transcript import Transcript
from conclave.errors import ConclaveError
from conclave.redaction import Redactor, known_secrets
from conclave.settings import Settings
from conclave.store import RunStore, StoreSettings, continued_conversation, open_run_store
from conclave.types import Message


def open_cli_store(config: ConsensusConfig) -> RunStore | None:
    """The store to keep runs in; None (with a warning) when it cannot be opened or is
    disabled: a store problem never costs the user the answer."""
    settings = StoreSettings()
    if not settings.enabled:
        return None
    core = Settings()
    redact = Redactor(known_secrets(core, [config]))
    try:
        return open_run_store(home=core.home, settings=settings, redact=redact, source="cli")
    except ConclaveError as exc:
        err.print(f"warning: runs are not kept: {escape(str(exc))}", style="yellow")
        return None


def keep_run(
    store: RunStore | None, transcript: Transcript | None, config: ConsensusConfig
) -> None:
    """Keep a run (written in the background; `close_cli_store` waits for it)."""
    if store is not None and transcript is not None:
        store.record(transcript, preset=config.name)


def close_cli_store(store: RunStore | None) -> None:
    """Wait for the runs being written, then close the store."""
    if store is not None:
        store.close()


@contextmanager
def reading_store() -> Iterator[RunStore]:
    """The store opened for reading; exit 1 with the reason when it is disabled or unreadable."""
    settings = StoreSettings()
    if not settings.enabled:
        fail("the run store is disabled (CONCLAVE_STORE_ENABLED=false): nothing is kept")
    try:
        store = open_run_store(home=Settings().home, settings=settings, source="cli")
    except ConclaveError as exc:
        fail(str(exc))
    try:
        yield store
    finally:
        store.close()


def last_conversation() -> list[Message]:
    """The conversation of the most recent kept run, its answer included (`chat --continue`).

    Raises ConclaveError when nothing is kept."""
    with reading_store() as store:
        latest = store.latest()
        transcript = store.transcript(latest.id) if latest else None
    if transcript is None:
        raise ConclaveError("no conversation is kept yet: start one with `conclave chat`")
    return continued_conversation(transcript)
