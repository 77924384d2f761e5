"""`conclave log`: the kept runs from the command line (list, search, show, export), and the
CLI's side of the store: keeping each `ask`/`chat` run and finding the last conversation for
`chat --continue`. The same store the service writes (`CONCLAVE_STORE_URL`, else SQLite under
`CONCLAVE_HOME`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from conclave.config import ConsensusConfig
from conclave.consensus.transcript import CallRecord, Transcript
from conclave.errors import ConclaveError
from conclave.redaction import Redactor, known_secrets
from conclave.settings import Settings
from conclave.store import (
    RunListing,
    RunQuery,
    RunStore,
    StoreSettings,
    continued_conversation,
    open_run_store,
)
from conclave.types import Message

log_app = typer.Typer(
    no_args_is_help=False,
    invoke_without_command=True,
    help="The kept runs (every ask, chat and service run): list, search, show, export.",
)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

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


# --- the CLI's writes -------------------------------------------------------------------------


def open_cli_store(config: ConsensusConfig) -> RunStore | None:
    """The store for `ask`/`chat` to keep runs in; None (with a warning) when it cannot be
    opened or is disabled: a store problem never costs the user the answer."""
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
    """Keep a run of the CLI (written in the background; `close_cli_store` waits for it)."""
    if store is not None and transcript is not None:
        store.record(transcript, preset=config.name)


def close_cli_store(store: RunStore | None) -> None:
    if store is not None:
        store.close()


def last_conversation() -> list[Message]:
    """The conversation of the most recent kept run, its answer included (`chat --continue`).

    Raises ConclaveError when nothing is kept."""
    with _reading() as store:
        latest = store.latest()
        transcript = store.transcript(latest.id) if latest else None
    if transcript is None:
        raise ConclaveError("no conversation is kept yet: start one with `conclave chat`")
    return continued_conversation(transcript)


# --- conclave log ------------------------------------------------------------------------------


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
    with _reading() as store:
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
    with _reading() as store:
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


def transcript_markdown(transcript: Transcript) -> str:
    """A run as Markdown: conversation, rounds (members, aggregate), answer and totals."""
    lines = [f"## Run {transcript.id}", ""]
    lines.append(f"- at: {transcript.created_at.isoformat(timespec='seconds')}")
    preset = transcript.config.get("name")
    if isinstance(preset, str):
        lines.append(f"- preset: {preset}")
    lines.append(f"- stopped: {transcript.stop_reason or 'unknown'}; {transcript.duration_s:.2f} s")
    usage = transcript.usage
    cost = "not reported" if usage.cost_usd is None else f"${usage.cost_usd:.6f}"
    lines.append(f"- tokens: {usage.prompt_tokens} in, {usage.completion_tokens} out; cost {cost}")
    lines += ["", "### Conversation", ""]
    for message in transcript.conversation:
        lines += [f"**{message.role}**:", "", _quoted(message.content), ""]
    for round_ in transcript.rounds:
        lines += [f"### Round {round_.index + 1}", ""]
        for call in round_.responses:
            lines += [_call_heading(call), "", _quoted(_call_text(call)), ""]
        if round_.aggregate is not None:
            lines += [
                _call_heading(round_.aggregate, "aggregate"),
                "",
                _quoted(_call_text(round_.aggregate)),
                "",
            ]
    lines += ["### Answer", "", transcript.answer or "(none)"]
    return "\n".join(lines)


# --- the work behind the commands -------------------------------------------------------------


@contextmanager
def _reading() -> Iterator[RunStore]:
    settings = StoreSettings()
    if not settings.enabled:
        _fail("the run store is disabled (CONCLAVE_STORE_ENABLED=false): nothing is kept")
    try:
        store = open_run_store(home=Settings().home, settings=settings, source="cli")
    except ConclaveError as exc:
        _fail(str(exc))
    try:
        yield store
    finally:
        store.close()


def _transcript(store: RunStore, run_id: str) -> Transcript:
    matches = store.database.ids_starting(run_id, limit=2)
    if not matches:
        _fail(f"no run {run_id!r} is kept: `conclave log` lists the kept runs")
    if len(matches) > 1:
        _fail(f"{run_id!r} names more than one run: give more of its id")
    transcript = store.transcript(matches[0])
    assert transcript is not None
    return transcript


def _print_runs(query: RunQuery) -> None:
    with _reading() as store:
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


def _call_heading(call: CallRecord, role: str = "member") -> str:
    outcome = (
        f"FAILED ({call.error.type})" if call.error else f"{call.usage.completion_tokens} tokens"
    )
    return f"**{call.model}** ({role}, {call.latency_s:.2f} s, {outcome}):"


def _call_text(call: CallRecord) -> str:
    return call.error.message if call.error else call.text


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" for line in (text or "(empty)").splitlines()) or "> (empty)"


def _fail(message: str) -> NoReturn:
    err.print(f"error: {escape(message)}", style="red")
    raise typer.Exit(1)
