"""`conclave ask` (one consensus, its answer on stdout) and `conclave chat` (turn by turn)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from conclave.cli import common
from conclave.cli.common import (
    ConfigOption,
    IterationsOption,
    StrategyOption,
    SystemOption,
    conversation,
    err,
    out,
    resolve_config,
    run,
)
from conclave.cli.docs import DocsOption, print_footnotes, with_documents
from conclave.cli.kept_runs import close_cli_store, keep_run, last_conversation, open_cli_store
from conclave.cli.live_view import with_live_view, with_progress_lines
from conclave.config import ConsensusConfig
from conclave.consensus.transcript import Transcript
from conclave.errors import ConfigError, ConsensusError
from conclave.session import Consensus, conversation_from
from conclave.store import RunStore
from conclave.types import Message


def register(app: typer.Typer) -> None:
    app.command()(ask)
    app.command()(chat)


def ask(
    prompt: Annotated[str, typer.Argument(help="The question or instruction.")],
    config: ConfigOption = None,
    iterations: IterationsOption = None,
    system: SystemOption = None,
    strategy: StrategyOption = None,
    docs: DocsOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the whole transcript as JSON.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
    receipt: Annotated[
        Path | None,
        typer.Option(
            help="Write a receipt (the transcript's sha256, attested as CONCLAVE_ATTESTATION "
            "says) with the transcript to this file, for `conclave verify`."
        ),
    ] = None,
) -> None:
    """Run a consensus and print its answer (the live view goes to stderr)."""
    consensus_config = with_documents(resolve_config(config, iterations, strategy), docs)
    messages = conversation(prompt, system)
    transcript = run(
        _consensus(consensus_config, messages, show=not quiet, keep_partial=json_output)
    )
    if receipt is not None:
        run(_write_receipt(transcript, receipt))
    out.print(transcript.to_json() if json_output else transcript.answer, markup=False)
    if not json_output:
        print_footnotes(transcript)
    store = open_cli_store(consensus_config)  # after the answer: keeping it never delays it
    keep_run(store, transcript, consensus_config)
    close_cli_store(store)


def chat(
    config: ConfigOption = None,
    iterations: IterationsOption = None,
    system: SystemOption = None,
    resume: Annotated[
        bool,
        typer.Option("--continue", help="Resume the last conversation kept (`conclave log`)."),
    ] = False,
    strategy: StrategyOption = None,
) -> None:
    """Talk with the consensus, turn by turn. Type `exit` (or Ctrl-D) to leave."""
    consensus_config = resolve_config(config, iterations, strategy)
    earlier = run(asyncio.to_thread(last_conversation)) if resume else None
    run(_chat(consensus_config, system, earlier))


async def _consensus(
    config: ConsensusConfig,
    messages: Sequence[Message],
    *,
    show: bool,
    keep_partial: bool = False,
) -> Transcript:
    """Run one consensus; with `keep_partial`, a failed run's transcript still goes to stdout."""
    async with Consensus(config, registry=common.make_registry()) as consensus:
        try:
            return await _watched(consensus, messages, show=show)
        except ConsensusError as exc:
            if keep_partial and exc.transcript is not None:
                out.print(exc.transcript.to_json(), markup=False)
            raise


async def _watched(consensus: Consensus, messages: Sequence[Message], *, show: bool) -> Transcript:
    """Run `messages` through `consensus`, drawn live on a terminal, as lines otherwise."""
    if show and err.is_terminal:
        return await with_live_view(consensus.events(messages), err)
    events = consensus.events(messages, stream_aggregate=False)
    return await with_progress_lines(events, err if show else None)


async def _chat(
    config: ConsensusConfig, system: str | None, earlier: list[Message] | None = None
) -> None:
    """One `Consensus` for the whole chat: the embedded models load on the first turn and stay
    loaded (with their prompt states) until the chat ends. `earlier`: a kept conversation
    to go on with (`--continue`)."""
    history: list[Message] = earlier or list(conversation_from([], system=system))
    err.print("conclave chat: type your message; `exit` or Ctrl-D leaves.", style="dim")
    store = open_cli_store(config)
    try:
        async with Consensus(config, registry=common.make_registry()) as consensus:
            _show_earlier(earlier or [])
            await _chat_turns(consensus, config, history, store)
    finally:
        close_cli_store(store)


def _show_earlier(earlier: list[Message]) -> None:
    for message in earlier:
        if message.role == "user":
            out.print(f"[bold cyan]you>[/] {escape(message.content)}")
        elif message.role == "assistant":
            out.print(f"[bold green]conclave>[/] {escape(message.content)}")


async def _chat_turns(
    consensus: Consensus,
    config: ConsensusConfig,
    history: list[Message],
    store: RunStore | None,
) -> None:
    while True:
        try:
            line = await asyncio.to_thread(out.input, "[bold cyan]you>[/] ")
        except EOFError:
            out.print()
            return
        text = line.strip()
        if text.lower() in {"exit", "quit", ":q"}:
            return
        if not text:
            continue
        history.append(Message(role="user", content=text))
        try:
            transcript = await _watched(consensus, history, show=True)
        except (ConsensusError, ConfigError) as exc:
            history.pop()
            err.print(f"error: {escape(str(exc))}", style="red")
            continue
        history.append(Message(role="assistant", content=transcript.answer))
        out.print(f"[bold green]conclave>[/] {escape(transcript.answer)}")
        keep_run(store, transcript, config)


async def _write_receipt(transcript: Transcript, path: Path) -> None:
    from conclave.attestation import attester_from_settings, issue_receipt, write_receipt_file
    from conclave.settings import Settings

    receipt = await issue_receipt(transcript, attester_from_settings(Settings()))
    written = write_receipt_file(path, receipt, transcript)
    err.print(f"receipt ({receipt.mode}) written to {written}", markup=False)
