"""The batch's progress bar on stderr: rows done of all, failures, rate and time left."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Rows finished per second, over the last half minute."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("? rows/s" if speed is None else f"{speed:.2f} rows/s", style="cyan")


class RichProgress:
    """A Rich progress bar for `run_jobs`: rows done (those found done included), failures,
    rows per second and the estimated time left."""

    def __init__(self, console: Console, description: str = "consensus") -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            speed_estimate_period=30.0,
        )
        self._description = description
        self._task: TaskID | None = None
        self._failed = 0

    def start(self, total: int, already_done: int) -> None:
        self._task = self._progress.add_task(
            self._description, total=total, completed=already_done, failed=0
        )
        self._progress.start()

    def advance(self, *, failed: bool) -> None:
        if self._task is None:
            return
        self._failed += failed
        self._progress.update(self._task, advance=1, failed=self._failed)

    def stop(self) -> None:
        self._progress.stop()
