"""The one resumable job runner: jobs in, results out, a bounded number at a time, each result
kept in a `ResultJournal` the moment it is ready. A batch's rows and an evaluation's (set-up,
row) pairs both run on it.

It knows nothing of consensus: `work` turns one job into one result (a job's failure must be a
result too; an exception from `work` stops the run), the journal keeps what is finished (see
`conclave.batch.journal` for what a killed run leaves and how the next run reads it), and a
progress sink is told as jobs finish. A job whose key already has a result in the journal is
skipped when `still_done(job, result)` says that result still answers it.

```python
journal = ResultJournal(out_path, Result, key_of=lambda result: result.key)
summary = await run_jobs(jobs, work, journal, concurrency=8, is_failure=lambda r: not r.ok)
```
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pydantic import BaseModel

from conclave.batch.journal import ResultJournal


class Keyed(Protocol):
    """A job, known by a key unique within its run (its result in the journal has the same)."""

    @property
    def key(self) -> str: ...


JobT = TypeVar("JobT", bound=Keyed)
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
class JobRunSummary:
    """What a run did: jobs given, found already done, finished now, failed now, and how many
    of the jobs found done hold a failure (still failed in the journal)."""

    jobs: int
    skipped: int
    finished: int
    failed: int
    elapsed_s: float
    failed_earlier: int = 0

    @property
    def jobs_per_s(self) -> float:
        return self.finished / self.elapsed_s if self.elapsed_s > 0 else 0.0


def always_done(job: object, result: object) -> bool:
    """A kept result answers its job for good (the default of `run_jobs`)."""
    return True


async def run_jobs(
    jobs: Sequence[JobT],
    work: Callable[[JobT], Awaitable[ResultT]],
    journal: ResultJournal[ResultT],
    *,
    concurrency: int,
    is_failure: Callable[[ResultT], bool],
    still_done: Callable[[JobT, ResultT], bool] = always_done,
    progress: ProgressSink | None = None,
    on_result: Callable[[JobT, ResultT], None] | None = None,
) -> JobRunSummary:
    """Run `work` on every job not done yet, at most `concurrency` at once, in the order given.

    A job is done when the journal holds a result under its key and `still_done(job, result)`
    (which may also raise, to refuse a journal written from other data). Each new result is
    appended to the journal as soon as it is ready, in the order jobs finish, and once it is on
    disk it is counted and handed to `on_result`. An exception from `work` cancels the jobs in
    flight and is raised as it is (not in an exception group); the jobs finished stay in the
    journal.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    keys = [job.key for job in jobs]
    if len(set(keys)) != len(keys):
        raise ValueError("jobs must have distinct keys")
    sink = progress or NoProgress()
    done = journal.open()
    try:
        kept = {
            job.key: done[job.key]
            for job in jobs
            if job.key in done and still_done(job, done[job.key])
        }
        todo = [job for job in jobs if job.key not in kept]
        pending = iter(todo)
        failed = 0
        started = time.perf_counter()
        sink.start(total=len(jobs), already_done=len(jobs) - len(todo))

        async def worker() -> None:
            nonlocal failed
            for job in pending:  # one shared iterator: each job goes to the first free worker
                result = await work(job)
                journal.append(result)
                # On disk before the job counts, without holding the other jobs up meanwhile.
                await asyncio.to_thread(journal.sync)
                failed += is_failure(result)
                sink.advance(failed=is_failure(result))
                if on_result is not None:
                    on_result(job, result)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(concurrency, len(todo))):
                    group.create_task(worker())
        except BaseExceptionGroup as group_error:
            # The first failure is the cause; the others are workers cancelled because of it.
            raise group_error.exceptions[0] from None
        finally:
            sink.stop()
        return JobRunSummary(
            jobs=len(jobs),
            skipped=len(jobs) - len(todo),
            finished=len(todo),
            failed=failed,
            elapsed_s=time.perf_counter() - started,
            failed_earlier=sum(is_failure(result) for result in kept.values()),
        )
    finally:
        journal.close()
