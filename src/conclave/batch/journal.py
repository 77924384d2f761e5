"""A run's results file as a journal: one JSON line per finished job, appended and pushed to
disk at once, so a run that is killed loses nothing it finished and the next run picks up where
it stopped.

Torn lines. A line is finished when its newline is written. The last line of the file, when it
has no newline or cannot be read as a result, is what a killed run was writing: it is dropped
(cut from the file when the journal is opened for appending) and its job runs again. Any other
line that cannot be read is not something a run of this kind wrote: it is a `JournalError`
naming the file and the line, and the file is left as it is. Blank lines are skipped.

Keys. Each result is known by a key (`key_of`); when a key appears on more than one line, the
last line wins (a job run again replaces its earlier result).

```python
journal = ResultJournal(Path("out.jsonl"), BatchResult, key_of=lambda result: result.key)
done = journal.open()          # the results already there, by key (a torn last line is cut)
journal.append(result)         # a killed process keeps it
journal.sync()                 # a lost machine keeps it
journal.close()
```
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TextIO, TypeVar

from pydantic import BaseModel, ValidationError

from conclave.errors import ConfigError

R = TypeVar("R", bound=BaseModel)


class JournalError(ConfigError):
    """A results file holds a line that no run of this kind wrote (named, with what to do)."""


@dataclass(frozen=True)
class _Contents(Generic[R]):
    results: dict[str, R]
    whole_bytes: int
    """The length of the file up to the end of its last readable line."""
    size: int


class ResultJournal(Generic[R]):
    """An append-only JSONL file of results (pydantic models), each known by `key_of(result)`."""

    def __init__(self, path: Path, result_type: type[R], key_of: Callable[[R], str]) -> None:
        self.path = path
        self._result_type = result_type
        self._key_of = key_of
        self._handle: TextIO | None = None
        self.cut_torn_line = False
        """Whether `open()` cut a torn last line (a run killed while writing it)."""

    def read(self) -> dict[str, R]:
        """The results written so far, by key, changing nothing (a torn last line is left out).
        JournalError for an unreadable line before the last."""
        return self._contents().results

    def open(self) -> dict[str, R]:
        """Read the results written so far, by key, cut a torn last line off the file, and open
        it for appending. JournalError (the file unchanged) for an unreadable line before the
        last."""
        contents = self._contents()
        if contents.whole_bytes != contents.size:
            with self.path.open("r+b") as handle:
                handle.truncate(contents.whole_bytes)
            self.cut_torn_line = True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", encoding="utf-8")
        return contents.results

    def append(self, result: R) -> None:
        """Write one result as a line and hand it to the operating system (a killed process
        loses nothing appended); `sync` then pushes it to disk."""
        if self._handle is None:
            raise RuntimeError("ResultJournal.append before open()")
        self._handle.write(result.model_dump_json() + "\n")
        self._handle.flush()

    def sync(self) -> None:
        """Push every line appended so far to disk (a lost machine loses none of them). It
        blocks for the disk: an async caller runs it in a thread."""
        if self._handle is None:
            raise RuntimeError("ResultJournal.sync before open()")
        os.fsync(self._handle.fileno())

    def rewrite(self, keep: Callable[[R], bool]) -> None:
        """Keep only the latest result of each key, and of those only what `keep` accepts
        (to run failed jobs again). Atomic: the file is replaced by a rename, so a kill leaves
        the old or the new one."""
        if not self.path.exists():
            return
        kept = [result for result in self.read().values() if keep(result)]
        temp = self.path.with_name(f".{self.path.name}.rewrite")
        with temp.open("w", encoding="utf-8") as out:
            for result in kept:
                out.write(result.model_dump_json() + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, self.path)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _contents(self) -> _Contents[R]:
        results: dict[str, R] = {}
        if not self.path.exists():
            return _Contents(results, 0, 0)
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        # After the last newline comes either nothing or a line that was never finished.
        finished, unfinished = lines[:-1], lines[-1]
        whole_bytes = 0
        for number, raw in enumerate(finished, start=1):
            if raw.strip():
                try:
                    result = self._result_type.model_validate_json(raw)
                except ValidationError as exc:
                    if number == len(finished) and not unfinished.strip():
                        break  # the last line, torn
                    raise JournalError(
                        f"{self.path} line {number} is not a result of this kind "
                        f"({_first_problem(exc)}); remove that line, or write to another file"
                    ) from None
                results[self._key_of(result)] = result
            whole_bytes += len(raw) + 1
        return _Contents(results, whole_bytes, len(data))


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]
