"""`conclave log`: the kept runs from the command line (list, search, show, export)."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from conclave.cli.common import err, fail, out
from conclave.cli.kept_runs import reading_store
from conclave.cli.transcript_markdown import transcript_markdown
from conclave.consensus.transcript import Transcript
from conclave.store import RunListing, RunQuery, RunStore

log_app = typer.Typer(
    no_args_is_help=False,
    invoke_without_command=True,
    help="The kept runs (every ask, chat and service run): list, search, show, export.",
)

LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, max=200, help="Runs to show.")]
PresetOption = Annotated[str | None, typer.Option(help="Only runs of this preset.")]
StrategyOption = Annotated[str | None, typer.Option(help="Only runs of this strategy.")]
SinceOption = Annotated[
    datetime | None, typer.Option(help="Only runs at or after this date (YYYY-MM-DD[THH:MM]).")
]
UntilOption = Annotated[
    datetime | None, typer.Option(help="Only runs before this date (YYYY-MM-DD[THH:MM]).")
]


class ExportFormat(StrEnum):
    json = "json"
    markdown = "markdown"


def register(app: typer.Typer) -> None:
    app.add_typer(log_app, name="log")


@log_app.callback()
def log_list(
    context: typer.Context,
    limit: LimitOption = 20,
    preset: PresetOption = None,
    strategy: StrategyOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    thread: Annotated[
        str | None, typer.Option(help="Only the turns of this thread (its first run's id).")
    ] = None,
) -> None:
    """The most recent runs (without a subcommand)."""
    if context.invoked_subcommand is not None:
        return
    query = RunQuery(
        preset=preset, strategy=strategy, since=since, until=until, thread_id=thread, limit=limit
    )
    _print_runs(query)


@log_app.command("search")
def log_search(
    words: Annotated[list[str], typer.Argument(help="Words that must all appear.")],
    limit: LimitOption = 20,
    preset: PresetOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
) -> None:
    """Runs whose prompt, conversation or answer contain every word (case-insensitive)."""
    query = RunQuery(text=" ".join(words), preset=preset, since=since, until=until, limit=limit)
    _print_runs(query)


@log_app.command("show")
def log_show(
    run_id: Annotated[str, typer.Argument(help="A run id (or its first characters).")],
    json_output: Annotated[
        bool, typer.Option("--json", help="The whole transcript as JSON.")
    ] = False,
) -> None:
    """One run: every round, every member's answer or failure, the aggregate, the answer."""
    with reading_store() as store:
        transcript = _transcript(store, run_id)
    if json_output:
        out.print(transcript.to_json(), markup=False)
    else:
        out.print(transcript_markdown(transcript), markup=False)


@log_app.command("export")
def log_export(
    run_ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Run ids (or their first characters); none: the runs the filters select."
        ),
    ] = None,
    export_format: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="json or markdown.")
    ] = ExportFormat.json,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    limit: LimitOption = 20,
    preset: PresetOption = None,
    search: Annotated[
        str | None, typer.Option("--search", "-q", help="Only runs with these words.")
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
) -> None:
    """Runs as JSON (a list of transcripts) or Markdown (one section per run)."""
    with reading_store() as store:
        if run_ids:
            transcripts = [_transcript(store, run_id) for run_id in run_ids]
        else:
            query = RunQuery(text=search, preset=preset, since=since, until=until, limit=limit)
            found = (store.transcript(summary.id) for summary in store.find(query).runs)
            transcripts = [transcript for transcript in found if transcript is not None]
    if export_format is ExportFormat.json:
        text = json.dumps(
            [t.model_dump(mode="json") for t in transcripts], indent=2, ensure_ascii=False
        )
    else:
        text = "\n\n".join(transcript_markdown(t) for t in transcripts)
    if output is None:
        out.print(text, markup=False)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        err.print(f"{len(transcripts)} run(s) written to {output}", markup=False)


def _transcript(store: RunStore, run_id: str) -> Transcript:
    matches = store.database.ids_starting(run_id, limit=2)
    if not matches:
        fail(f"no run {run_id!r} is kept: `conclave log` lists the kept runs")
    if len(matches) > 1:
        fail(f"{run_id!r} names more than one run: give more of its id")
    transcript = store.transcript(matches[0])
    assert transcript is not None
    return transcript


def _print_runs(query: RunQuery) -> None:
    with reading_store() as store:
        page = store.find(query)
    if not page.runs:
        err.print("no runs match" if _filtered(query) else "no runs kept yet")
        return
    for run in page.runs:
        out.print(_line(run))
    if page.has_more:
        err.print(f"{page.total - len(page.runs)} older run(s) not shown (--limit)", style="dim")


def _line(run: RunListing) -> str:
    """One run on one line (greppable, like `git log --oneline`)."""
    failed = f", [red]{run.failed_calls} failed[/]" if run.failed_calls else ""
    outcome = "[green]ok[/]" if run.ok else f"[red]{escape(run.stop_reason or 'failed')}[/]"
    turn = f" turn {run.turn + 1}" if run.turn else ""
    return (
        f"[bold]{run.id[:12]}[/]  {run.created_at:%Y-%m-%d %H:%M}  {escape(run.preset)}{turn}  "
        f"{outcome}  {run.calls} calls{failed}  {run.duration_s:.1f}s  "
        f"{escape(_short(run.prompt))} [dim]->[/] {escape(_short(run.answer))}"
    )


def _filtered(query: RunQuery) -> bool:
    return any(
        (query.preset, query.strategy, query.since, query.until, query.text, query.thread_id)
    )


def _short(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
