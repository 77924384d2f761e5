"""The output file as a journal: one JSON line per finished row, appended and flushed at once,
so a run that is killed loses nothing it finished and a new run picks up where it stopped.

```python
journal = ResultJournal(Path("out.jsonl"), BatchResult)
done = journal.open()          # the results already there, by key (a torn last line is cut)
journal.append(result)         # written and flushed before the next row is counted
journal.close()
```
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TextIO, TypeVar

from pydantic import BaseModel, ValidationError

from conclave.errors import ConfigError


class Keyed(Protocol):
    """A row or a result, known by a key unique within its batch."""

    @property
    def key(self) -> str: ...


R = TypeVar("R", bound=BaseModel)


class JournalError(ConfigError):
    """The output file holds something other than this batch's result rows."""


class ResultJournal(Generic[R]):
    """An append-only JSONL file of results (pydantic models with a `key`), one per row."""

    def __init__(self, path: Path, result_type: type[R], key_of: Callable[[R], str]) -> None:
        self.path = path
        self._result_type = result_type
        self._key_of = key_of
        self._handle: TextIO | None = None
        self.cut_torn_line = False
        """Whether `open()` cut an unfinished last line (a run killed while writing it)."""

    def open(self) -> dict[str, R]:
        """Read the results already written, by key, and open the file for appending.

        An unfinished last line (no newline, or not a whole result) is cut off: its row is run
        again. Any other unreadable line is a JournalError naming it, and nothing is changed.
        """
        done: dict[str, R] = {}
        good_bytes = 0
        if self.path.exists():
            data = self.path.read_bytes()
            lines = data.split(b"\n")
            # After the last newline comes either nothing or a torn line.
            whole, tail = lines[:-1], lines[-1]
            for number, raw in enumerate(whole, start=1):
                result = self._parse(raw)
                if result is None:
                    if number == len(whole) and not tail:
                        self.cut_torn_line = True
                        break
                    raise JournalError(
                        f"{self.path} line {number} is not a result row of this batch; "
                        f"give another --out, or remove that line"
                    )
                done[self._key_of(result)] = result
                good_bytes += len(raw) + 1
            if tail.strip():
                self.cut_torn_line = True
            if good_bytes != len(data):
                with self.path.open("r+b") as handle:
                    handle.truncate(good_bytes)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", encoding="utf-8")
        return done

    def rewrite(self, keep: Callable[[R], bool]) -> None:
        """Keep only the results `keep` accepts (for running failed rows again). Atomic: the
        file is replaced by a rename, so a kill leaves the old or the new one."""
        done = self._read_all()
        temp = self.path.with_name(f".{self.path.name}.rewrite")
        with temp.open("w", encoding="utf-8") as out:
            for result in done:
                if keep(result):
                    out.write(result.model_dump_json() + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, self.path)

    def append(self, result: R) -> None:
        """Write one result as a line and flush it to the operating system."""
        if self._handle is None:
            raise RuntimeError("ResultJournal.append before open()")
        self._handle.write(result.model_dump_json() + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _read_all(self) -> list[R]:
        results = []
        if self.path.exists():
            for raw in self.path.read_bytes().splitlines():
                result = self._parse(raw)
                if result is not None:
                    results.append(result)
        return results

    def _parse(self, raw: bytes) -> R | None:
        try:
            return self._result_type.model_validate_json(raw)
        except ValidationError:
            return None
