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

from conclave.cli.run_text import agreement_line, decided_by_text, one_line, step_line
from conclave.consensus.events import (
    AggregateDelta,
    AggregateFinished,
    AggregateRestarted,
    AnswerChecked,
    ConsensusDone,
    ConsensusEvent,
    ConversationPrepared,
    MemberAnswered,
    MemberFailed,
    RoundFinished,
    RoundStarted,
    RunStarted,
    StepProgress,
)
from conclave.consensus.transcript import Agreement, CallRecord, RoundRecord, Transcript


@dataclass
class LiveView:
    """Folds events into what the terminal shows: one row per member, the calls besides them
    (reviews, a failed aggregator), the consensus so far (as a check revised it)."""

    members: tuple[str, ...] = ()
    aggregator: str = ""
    max_rounds: int = 0
    round: int = 0
    results: dict[str, CallRecord] = field(default_factory=dict)
    aggregate_text: str = ""
    aggregate: CallRecord | None = None
    other_calls: tuple[CallRecord, ...] = ()
    revised_answer: str | None = None
    agreement: Agreement | None = None
    decided_by: str = ""
    steps: dict[str, StepProgress] = field(default_factory=dict)
    """The latest progress of each part of a step (a swarm's plan and its steps), by name."""

    def apply(self, event: ConsensusEvent) -> None:
        if isinstance(event, RunStarted):
            self.members, self.aggregator = event.members, event.aggregator
            self.max_rounds = event.max_rounds
        elif isinstance(event, RoundStarted):
            self.round = event.round
            self.members = event.members
            self.results.clear()
            self.aggregate_text, self.aggregate = "", None
            self.other_calls, self.revised_answer = (), None
            self.agreement, self.decided_by = None, ""
        elif isinstance(event, MemberAnswered | MemberFailed):
            self.results[event.response.model] = event.response
        elif isinstance(event, StepProgress) and event.status != "note":
            self.steps[step_name(event)] = event
        elif isinstance(event, AggregateDelta):
            self.aggregate_text += event.text
        elif isinstance(event, AggregateRestarted):
            self.aggregate_text = ""
        elif isinstance(event, AggregateFinished):
            self.aggregate = event.response
            self.decided_by = event.decided_by
            self.other_calls = event.other_calls
        elif isinstance(event, AnswerChecked) and event.revised:
            self.revised_answer = event.answer
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
        for call in self.other_calls:
            table.add_row(call.model, *_row(call))
        for name, progress in self.steps.items():
            table.add_row(name, *_step_row(progress))
        steps_done = bool(self.steps) and all(p.status != "started" for p in self.steps.values())
        if len(self.results) == len(self.members) and (self.results or steps_done):
            name = self.aggregator if self.decided_by in ("", "aggregator") else self.decided_by
            row = _row(self.aggregate, preview=self.aggregate_text, text=self.revised_answer)
            table.add_row(name, *row)
        title = f"round {self.round + 1} of at most {self.max_rounds}"
        parts: list[RenderableType] = [table]
        if self.agreement is not None:
            parts.append(Text(agreement_line(self.agreement), style="cyan"))
        return RichPanel(Group(*parts), title=title, title_align="left")


def _row(
    record: CallRecord | None, preview: str = "", text: str | None = None
) -> tuple[Text, str, str, str]:
    """A call's status, tokens, time and answer (`text` in place of its own when given)."""
    if record is None:
        return Text("working…", style="yellow"), "", "", one_line(preview)
    seconds = f"{record.latency_s:.1f}s"
    if record.error is not None:
        return Text(f"failed: {record.error.type}", style="red"), "", seconds, record.error.message
    status = Text("truncated", style="yellow") if record.truncated else Text("done", style="green")
    shown = record.text if text is None else text
    return status, str(record.usage.completion_tokens), seconds, one_line(shown)


_STEP_STATUS = {
    "started": Text("working…", style="yellow"),
    "finished": Text("done", style="green"),
    "failed": Text("failed", style="red"),
}


def _step_row(progress: StepProgress) -> tuple[Text, str, str, str]:
    status = _STEP_STATUS.get(progress.status, Text(progress.status))
    return status, "", "", one_line(progress.message)


def step_name(event: StepProgress) -> str:
    """How a step's progress is named on the terminal: "swarm step 2"."""
    return f"{event.step} {event.name}".strip()


def round_summary(record: RoundRecord) -> str:
    """One line for a finished round: who answered, how long the consensus took, its start."""
    answered = len(record.answered)
    line = f"round {record.index + 1}: {answered}/{len(record.responses)} members answered"
    if record.aggregate is not None:
        line += f"; consensus in {record.aggregate.latency_s:.1f}s: {one_line(record.consensus)}"
    if record.decided_by != "aggregator":
        line += f" (decided by {decided_by_text(record.decided_by)})"
    if record.agreement is not None:
        line += f"; {agreement_line(record.agreement)}"
    return line


async def with_live_view(events: AsyncIterator[ConsensusEvent], console: Console) -> Transcript:
    """Draw the run live on `console` (a terminal), a line per finished round; the transcript."""
    view = LiveView()
    with Live(view.render(), console=console, refresh_per_second=8, transient=False) as live:
        async for event in events:
            view.apply(event)
            live.update(view.render())
            if isinstance(event, StepProgress | ConversationPrepared | AnswerChecked):
                live.console.print(step_line(event), markup=False)
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
    elif isinstance(event, StepProgress | ConversationPrepared | AnswerChecked):
        console.print(step_line(event), markup=False)
    elif isinstance(event, RoundFinished):
        console.print(round_summary(event.record), markup=False)
