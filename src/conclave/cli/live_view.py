"""The terminal's view of a run on stderr, drawn from the engine's events: a live panel on a
terminal, one line per answer and round otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel as RichPanel
from rich.table import Table
from rich.text import Text

from conclave.consensus.events import (
    AggregateDelta,
    AggregateFinished,
    AggregateRestarted,
    ConsensusDone,
    ConsensusEvent,
    MemberAnswered,
    MemberFailed,
    RoundFinished,
    RoundStarted,
    RunStarted,
)
from conclave.consensus.transcript import Agreement, CallRecord, RoundRecord, Transcript

_PREVIEW_CHARS = 70


@dataclass
class LiveView:
    """Folds events into what the terminal shows: one row per member, the aggregate so far."""

    members: tuple[str, ...] = ()
    aggregator: str = ""
    max_rounds: int = 0
    round: int = 0
    results: dict[str, CallRecord] = field(default_factory=dict)
    aggregate_text: str = ""
    aggregate: CallRecord | None = None
    agreement: Agreement | None = None
    decided_by: str = ""

    def apply(self, event: ConsensusEvent) -> None:
        if isinstance(event, RunStarted):
            self.members, self.aggregator = event.members, event.aggregator
            self.max_rounds = event.max_rounds
        elif isinstance(event, RoundStarted):
            self.round = event.round
            self.members = event.members
            self.results.clear()
            self.aggregate_text, self.aggregate = "", None
            self.agreement, self.decided_by = None, ""
        elif isinstance(event, MemberAnswered | MemberFailed):
            self.results[event.response.model] = event.response
        elif isinstance(event, AggregateDelta):
            self.aggregate_text += event.text
        elif isinstance(event, AggregateRestarted):
            self.aggregate_text = ""
        elif isinstance(event, AggregateFinished):
            self.aggregate = event.response
            self.decided_by = event.decided_by
        elif isinstance(event, RoundFinished):
            self.agreement = event.record.agreement

    def render(self) -> RenderableType:
        table = Table(expand=True, show_edge=False)
        table.add_column("model", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("tokens", justify="right")
        table.add_column("time", justify="right")
        table.add_column("answer", overflow="ellipsis", no_wrap=True, ratio=1)
        for name in self.members:
            table.add_row(name, *_row(self.results.get(name)))
        if self.results and len(self.results) == len(self.members):
            name = self.aggregator if self.decided_by in ("", "aggregator") else self.decided_by
            table.add_row(name, *_row(self.aggregate, preview=self.aggregate_text))
        title = f"round {self.round + 1} of at most {self.max_rounds}"
        parts: list[RenderableType] = [table]
        if self.agreement is not None:
            parts.append(Text(agreement_line(self.agreement), style="cyan"))
        return RichPanel(Group(*parts), title=title, title_align="left")


def _row(record: CallRecord | None, preview: str = "") -> tuple[Text, str, str, str]:
    if record is None:
        return Text("working…", style="yellow"), "", "", _one_line(preview)
    seconds = f"{record.latency_s:.1f}s"
    if record.error is not None:
        return Text(f"failed: {record.error.type}", style="red"), "", seconds, record.error.message
    status = Text("truncated", style="yellow") if record.truncated else Text("done", style="green")
    return status, str(record.usage.completion_tokens), seconds, _one_line(record.text)


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW_CHARS else flat[: _PREVIEW_CHARS - 1] + "…"


def round_summary(record: RoundRecord) -> str:
    """One line for a finished round: who answered, how long the consensus took, its start."""
    answered = len(record.answered)
    line = f"round {record.index + 1}: {answered}/{len(record.responses)} members answered"
    if record.aggregate is not None:
        line += (
            f"; consensus in {record.aggregate.latency_s:.1f}s: {_one_line(record.aggregate.text)}"
        )
    if record.decided_by != "aggregator":
        line += f" (decided by {record.decided_by.replace('_', ' ')})"
    if record.agreement is not None:
        line += f"; {agreement_line(record.agreement)}"
    return line


def agreement_line(agreement: Agreement) -> str:
    """Agreement, who backs the answer, and the confidence, in one line."""
    backers = ", ".join(agreement.supporters) or "no member"
    line = (
        f"agreement {agreement.score:.0%} · backed by {backers} · "
        f"confidence {agreement.confidence:.0%}"
    )
    if len(agreement.clusters) > 1:
        shown = " / ".join(
            f"{_one_line(c.answer)[:24]} x{len(c.members)}" for c in agreement.clusters[:4]
        )
        line += f" · answers: {shown}"
    return line


async def with_live_view(events: AsyncIterator[ConsensusEvent], console: Console) -> Transcript:
    """Draw the run live on `console` (a terminal), a line per finished round; the transcript."""
    view = LiveView()
    with Live(view.render(), console=console, refresh_per_second=8, transient=False) as live:
        async for event in events:
            view.apply(event)
            live.update(view.render())
            if isinstance(event, RoundFinished):
                live.console.print(round_summary(event.record), markup=False)
            if isinstance(event, ConsensusDone):
                return event.transcript
    raise AssertionError("the run ended without a transcript")  # pragma: no cover


async def with_progress_lines(
    events: AsyncIterator[ConsensusEvent], console: Console | None
) -> Transcript:
    """Print a line per answer, failure and round on `console` (none: silent); the transcript."""
    async for event in events:
        if console is not None:
            _progress_line(event, console)
        if isinstance(event, ConsensusDone):
            return event.transcript
    raise AssertionError("the run ended without a transcript")  # pragma: no cover


def _progress_line(event: ConsensusEvent, console: Console) -> None:
    if isinstance(event, MemberAnswered):
        r = event.response
        flag = " (truncated)" if r.truncated else ""
        console.print(f"round {event.round + 1}: {r.model} answered in {r.latency_s:.1f}s{flag}")
    elif isinstance(event, MemberFailed) and event.response.error:
        model, error = event.response.model, event.response.error
        console.print(f"round {event.round + 1}: {model} failed: {escape(error.message)}")
    elif isinstance(event, RoundFinished):
        console.print(round_summary(event.record), markup=False)
