"""The generic row runner: rows in, results out, a bounded number at a time, resumable.

It knows nothing of consensus: `work` turns one row into one result (and must turn a row's
failure into a result too), the journal keeps what is finished, a progress sink is told as rows
finish. The consensus batch, the Ray pool and the eval harness all run on it.

```python
journal = ResultJournal(out_path, Result, key_of=lambda result: result.key)
summary = await run_rows(rows, work, journal, concurrency=8, is_failure=lambda r: not r.ok)
```
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pydantic import BaseModel

from conclave.batch.journal import JournalError, Keyed, ResultJournal

RowT = TypeVar("RowT", bound=Keyed)
ResultT = TypeVar("ResultT", bound=BaseModel)


class ProgressSink(Protocol):
    """Told how a run goes (a progress bar, a log, nothing)."""

    def start(self, total: int, already_done: int) -> None: ...

    def advance(self, *, failed: bool) -> None: ...

    def stop(self) -> None: ...


class NoProgress:
    """A progress sink that shows nothing."""

    def start(self, total: int, already_done: int) -> None:
        pass

    def advance(self, *, failed: bool) -> None:
        pass

    def stop(self) -> None:
        pass


@dataclass(frozen=True)
class RunSummary:
    """What a run did: rows in the input, found already done, finished now, failed now, and
    how many of the rows found done hold a failure (still failed in the output)."""

    rows: int
    skipped: int
    finished: int
    failed: int
    elapsed_s: float
    failed_earlier: int = 0

    @property
    def rows_per_s(self) -> float:
        return self.finished / self.elapsed_s if self.elapsed_s > 0 else 0.0


async def run_rows(
    rows: Sequence[RowT],
    work: Callable[[RowT], Awaitable[ResultT]],
    journal: ResultJournal[ResultT],
    *,
    concurrency: int,
    is_failure: Callable[[ResultT], bool],
    progress: ProgressSink | None = None,
    check_resumed: Callable[[RowT, ResultT], None] | None = None,
) -> RunSummary:
    """Run `work` on every row whose key is not in the journal yet, `concurrency` at a time.

    Each result is appended (and flushed) to the journal as soon as it is ready, in the order
    rows finish. `check_resumed(row, result)` may raise to refuse a journal written from other
    rows. An exception from `work` stops the run (the rows finished stay in the journal).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    keys = [row.key for row in rows]
    if len(set(keys)) != len(keys):
        raise ValueError("rows must have distinct keys")
    sink = progress or NoProgress()
    done = journal.open()
    try:
        _check_journal(rows, done, check_resumed, journal)
        todo = [row for row in rows if row.key not in done]
        pending = iter(todo)
        failed = 0
        started = time.perf_counter()
        sink.start(total=len(rows), already_done=len(rows) - len(todo))

        async def worker() -> None:
            nonlocal failed
            for row in pending:  # one shared iterator: each row is taken once
                result = await work(row)
                journal.append(result)
                failed += is_failure(result)
                sink.advance(failed=is_failure(result))

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(concurrency, len(todo))):
                    group.create_task(worker())
        except BaseExceptionGroup as group_error:
            raise group_error.exceptions[0] from None  # the first failure, as a caller expects
        finally:
            sink.stop()
        return RunSummary(
            rows=len(rows),
            skipped=len(rows) - len(todo),
            finished=len(todo),
            failed=failed,
            elapsed_s=time.perf_counter() - started,
            failed_earlier=sum(is_failure(result) for result in done.values()),
        )
    finally:
        journal.close()


def _check_journal(
    rows: Sequence[RowT],
    done: dict[str, ResultT],
    check_resumed: Callable[[RowT, ResultT], None] | None,
    journal: ResultJournal[ResultT],
) -> None:
    by_key = {row.key: row for row in rows}
    strangers = [key for key in done if key not in by_key]
    if strangers:
        raise JournalError(
            f"{journal.path} holds results for rows that are not in this input "
            f"(keys {', '.join(strangers[:5])}{', ...' if len(strangers) > 5 else ''}): "
            f"it was written from other data; give another --out"
        )
    if check_resumed is not None:
        for key, result in done.items():
            check_resumed(by_key[key], result)
