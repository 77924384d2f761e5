"""Run many independent jobs, a few at a time, keeping every finished result on disk.

Generic on purpose: an evaluation's (set-up, row) pairs and a batch's rows both fit. `ResultLog`
is an append-only JSONL file of results keyed by job; a restart reads it and skips the jobs
already done, and a killed run loses only the jobs that were still running (a line cut short
by the kill is ignored). `run_bounded` runs the remaining jobs with at most `concurrency` at once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from conclave.errors import ConfigError

Job = TypeVar("Job")
Result = TypeVar("Result")
Record = TypeVar("Record", bound=BaseModel)


async def run_bounded(
    jobs: Iterable[Job],
    work: Callable[[Job], Awaitable[Result]],
    *,
    concurrency: int,
    on_result: Callable[[Job, Result], None],
) -> None:
    """Run `work` on every job, at most `concurrency` at once, in order of the jobs; call
    `on_result` as each finishes. An exception from `work` cancels the rest and is raised
    as it is (not wrapped in an exception group)."""
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, not {concurrency}")
    pending = iter(jobs)

    async def worker() -> None:
        for job in pending:  # shared: each job goes to the first free worker
            on_result(job, await work(job))

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    except BaseExceptionGroup as failed:
        # The first failure is the cause; the others are workers cancelled because of it.
        raise failed.exceptions[0] from None


class ResultLog(Generic[Record]):
    """Finished results, one JSON line each, keyed by `key(record)`; later lines win."""

    def __init__(self, path: Path, model: type[Record], key: Callable[[Record], str]) -> None:
        self.path = path
        self._model = model
        self._key = key
        self.skipped_lines = 0
        """Lines that could not be read back (a write cut short by a kill)."""

    def load(self) -> dict[str, Record]:
        """Every result written so far, by key."""
        records: dict[str, Record] = {}
        self.skipped_lines = 0
        if not self.path.exists():
            return records
        with self.path.open(encoding="utf-8") as file:
            for line in file:
                if not line.strip():
                    continue
                try:
                    record = self._model.model_validate_json(line)
                except ValidationError:
                    self.skipped_lines += 1
                    continue
                records[self._key(record)] = record
        return records

    def append(self, record: Record) -> None:
        """Write one result and push it to disk before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = record.model_dump_json() + "\n"
        with self.path.open("a", encoding="utf-8") as file:
            if file.tell() > 0 and not self._ends_with_newline():
                file.write("\n")  # after a line cut short by a kill
            file.write(line)
            file.flush()
            os.fsync(file.fileno())

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as file:
            file.seek(-1, os.SEEK_END)
            return file.read(1) == b"\n"
