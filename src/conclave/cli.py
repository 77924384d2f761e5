"""The `conclave` command line: ask, chat, batch, complete, models, credits, config, verify."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Annotated, NoReturn, TypeAlias, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from conclave.batch.command import batch as batch_command
from conclave.config import (
    ConsensusConfig,
    ModelSpec,
    StrategyName,
    format_validation_error,
    load_config,
)
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.events import (
    ConsensusDone,
    ConsensusEvent,
    MemberAnswered,
    MemberFailed,
    RoundFinished,
)
from conclave.consensus.panel import build_panel
from conclave.consensus.transcript import Transcript
from conclave.errors import ConclaveError, ConfigError, ConsensusError
from conclave.evaluation.cli import eval_command
from conclave.live_view import LiveView, round_summary
from conclave.presets import embedded_config
from conclave.prompt_checks import check_prompt
from conclave.providers.registry import ProviderRegistry
from conclave.run_log import close_cli_store, keep_run, last_conversation, log_app, open_cli_store
from conclave.session import conversation_from
from conclave.store import RunStore
from conclave.types import Message, TextDelta

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Consensus Learning over LLMs: a panel answers, an aggregator synthesises, rounds refine.",
)
config_app = typer.Typer(no_args_is_help=True, help="Check and show consensus configs.")
app.add_typer(config_app, name="config")
app.add_typer(log_app, name="log")
app.command("batch")(batch_command)
app.command("eval")(eval_command)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

T = TypeVar("T")
_Events: TypeAlias = AsyncGenerator[ConsensusEvent, None]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="A consensus config (Flare's input.json or conclave's superset). "
        "Without it, the embedded local models are used.",
    ),
]
IterationsOption = Annotated[
    int | None, typer.Option("--iterations", "-n", min=0, help="Improvement rounds.")
]
SystemOption = Annotated[str | None, typer.Option("--system", "-s", help="A system message.")]
StrategyOption = Annotated[
    StrategyName | None,
    typer.Option(
        "--strategy",
        help="How the panel agrees: flare (an aggregator synthesises), vote, rank, sample, "
        "adaptive. Default: the config's.",
    ),
]


def make_registry() -> ProviderRegistry:
    """The providers the commands use (tests replace this)."""
    return ProviderRegistry()


def main() -> None:
    """Entry point of the `conclave` console script."""
    app()


@app.command()
def ask(
    prompt: Annotated[str, typer.Argument(help="The question or instruction.")],
    config: ConfigOption = None,
    iterations: IterationsOption = None,
    system: SystemOption = None,
    strategy: StrategyOption = None,
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
    consensus_config = _resolve_config(config, iterations, strategy)
    conversation = _conversation(prompt, system)
    transcript = _run(
        _consensus(consensus_config, conversation, show=not quiet, keep_partial=json_output)
    )
    if receipt is not None:
        _run(_write_receipt(transcript, receipt))
    out.print(transcript.to_json() if json_output else transcript.answer, markup=False)
    store = open_cli_store(consensus_config)  # after the answer: keeping it never delays it
    keep_run(store, transcript, consensus_config)
    close_cli_store(store)


@app.command()
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
    consensus_config = _resolve_config(config, iterations, strategy)
    earlier = _run(asyncio.to_thread(last_conversation)) if resume else None
    _run(_chat(consensus_config, system, earlier))


@app.command()
def complete(
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="The prompt.")],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="local:<pack>, openrouter:<slug>, a bare OpenRouter slug, or "
            "the model name at --base-url.",
        ),
    ],
    system: SystemOption = None,
    max_tokens: Annotated[int, typer.Option(min=1)] = 512,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0)] = 0.7,
    base_url: Annotated[
        str | None, typer.Option(help="Any OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="The environment variable holding --base-url's key.")
    ] = None,
) -> None:
    """Plain completion from one model, streamed to stdout."""
    spec = _checked(
        lambda: ModelSpec(
            id=model,
            max_tokens=max_tokens,
            temperature=temperature,
            base_url=base_url,
            api_key_env=api_key_env,
        )
    )
    _run(_complete(spec, _conversation(prompt, system)))


@app.command()
def models(
    free: Annotated[bool, typer.Option("--free", help="Only OpenRouter's free models.")] = False,
    local: Annotated[bool, typer.Option("--local", help="Only the embedded models.")] = False,
    search: Annotated[str | None, typer.Option(help="Only ids containing this text.")] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify", help="Prepare the default embedded packs now: join and sha256-check them."
        ),
    ] = False,
) -> None:
    """The embedded model packs (and whether installed) and OpenRouter's models with prices."""
    if verify:
        _verify_default_packs()
    _run(_models(free=free, local_only=local, search=search))


@app.command()
def credits() -> None:
    """OpenRouter credits and the key's limits (needs OPENROUTER_API_KEY)."""
    _run(_credits())


@config_app.command("check")
def config_check(file: Annotated[Path, typer.Argument(help="The config file.")]) -> None:
    """Validate a config: exit 0 if valid, 1 with every problem named if not (an unknown or
    uninstalled embedded model included)."""
    from conclave.providers.readiness import check_embedded_models
    from conclave.settings import Settings

    try:
        config = load_config(file)
        check_embedded_models(config, Settings().models_dir, source=str(file))
    except ConclaveError as exc:
        _fail(str(exc))
    aggregator = config.aggregator_spec.model.id
    out.print(
        f"{file}: valid: {len(config.models)} models, aggregator {aggregator}, "
        f"{config.iterations} improvement round(s), quorum {config.quorum}",
        markup=False,
    )


@config_app.command("show")
def config_show() -> None:
    """Print the embedded default config, a starting point for your own."""
    out.print(embedded_config().model_dump_json(indent=2, exclude_defaults=True), markup=False)


@app.command()
def verify(
    receipt: Annotated[Path, typer.Argument(help="A receipt file (receipt and transcript).")],
    root_cert: Annotated[
        Path | None, typer.Option(help="The pinned root certificate (PEM) for PKI tokens.")
    ] = None,
    jwks: Annotated[
        Path | None, typer.Option(help="The issuer's JWKS (JSON) for OIDC tokens.")
    ] = None,
    audience: Annotated[
        str,
        typer.Option(
            envvar="CONCLAVE_ATTESTATION_AUDIENCE", help="The audience the token must name."
        ),
    ] = "conclave-receipt",
    image_digest: Annotated[
        str | None, typer.Option(help="The container image digest that must have produced it.")
    ] = None,
    require_image_digest: Annotated[
        bool,
        typer.Option(help="Fail when no --image-digest pins the workload (else only a warning)."),
    ] = False,
    allow_debug: Annotated[
        bool, typer.Option(help="Accept debug images (never in production).")
    ] = False,
    allow_simulated: Annotated[
        bool, typer.Option(help="Accept simulated tokens (development only).")
    ] = False,
    allow_unattested: Annotated[
        bool, typer.Option(help="Accept a receipt without a token (checks only the hash).")
    ] = False,
    fetch_keys: Annotated[
        bool, typer.Option(help="Fetch the issuer's OIDC keys over HTTPS if --jwks is not given.")
    ] = False,
) -> None:
    """Check a receipt offline: the transcript's hash, the token's signature and every claim."""
    from conclave.attestation import verify_receipt_file

    try:
        report = verify_receipt_file(
            receipt,
            jwks_path=jwks,
            root_cert_path=root_cert,
            audience=audience,
            allow_simulated=allow_simulated,
            allow_debug=allow_debug,
            expected_image_digest=image_digest,
            require_image_digest=require_image_digest,
            require_attestation=not allow_unattested,
            fetch_keys=fetch_keys,
        )
    except ConclaveError as exc:
        _fail(str(exc))
    out.print(report.render(), markup=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(envvar="CONCLAVE_HOST", help="The address to listen on.")
    ] = "0.0.0.0",
    port: Annotated[
        int,
        typer.Option(envvar="CONCLAVE_PORT", min=1, max=65535, help="The port to listen on."),
    ] = 8080,
    config: Annotated[
        list[Path] | None,
        typer.Option(
            "--config",
            "-c",
            help="A consensus config; repeat for more presets (one per file, the first is "
            "`default`). Without it, the embedded local models.",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            envvar="CONCLAVE_WORKERS", min=1, help="Server processes (one per core at most)."
        ),
    ] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
    allow_open_access: Annotated[
        bool,
        typer.Option(
            envvar="CONCLAVE_ALLOW_OPEN_ACCESS",
            help="Serve beyond loopback with no CONCLAVE_API_KEYS without the warning "
            "(anyone who reaches the port can spend your models' time and keys).",
        ),
    ] = False,
) -> None:
    """Serve the consensus over HTTP: Flare's route, an OpenAI-compatible /v1, /metrics.

    Without CONCLAVE_API_KEYS on an address beyond loopback, a warning is printed at start."""
    from conclave.server.launch import serve as serve_http

    try:
        serve_http(
            host=host,
            port=port,
            config_paths=config or [],
            workers=workers,
            access_log=access_log,
            allow_open_access=allow_open_access,
        )
    except ConclaveError as exc:
        _fail(str(exc))


# --- the work behind the commands -------------------------------------------------------------


def _conversation(prompt: str, system: str | None) -> tuple[Message, ...]:
    """The command line's prompt as a conversation; a clear error for a blank prompt or
    bytes that are not UTF-8 (Python keeps those as lone surrogates)."""
    conversation = conversation_from(prompt, system=system)
    try:
        check_prompt(conversation)
    except ConfigError as exc:
        _fail(str(exc))
    return conversation


def _resolve_config(
    path: Path | None, iterations: int | None, strategy: StrategyName | None = None
) -> ConsensusConfig:
    try:
        config = load_config(path) if path else embedded_config()
        changes: dict[str, object] = {}
        if iterations is not None:
            changes["iterations"] = iterations
        if strategy is not None:
            changes["strategy"] = strategy
        return config.with_changes(**changes) if changes else config
    except ConclaveError as exc:
        _fail(str(exc))


async def _consensus(
    config: ConsensusConfig,
    conversation: Sequence[Message],
    *,
    show: bool,
    keep_partial: bool = False,
) -> Transcript:
    """Run one consensus; with `keep_partial`, a failed run's transcript still goes to stdout."""
    registry = make_registry()
    try:
        engine = ConsensusEngine(config, build_panel(config, registry))
        return await _run_engine(engine, conversation, show=show)
    except ConsensusError as exc:
        if keep_partial and exc.transcript is not None:
            out.print(exc.transcript.to_json(), markup=False)
        raise
    finally:
        await registry.aclose()


async def _run_engine(
    engine: ConsensusEngine, conversation: Sequence[Message], *, show: bool
) -> Transcript:
    if show and err.is_terminal:
        return await _with_live_view(engine.run(conversation))
    events = engine.run(conversation, stream_aggregate=False)
    return await _with_progress_lines(events, show=show)


async def _with_live_view(events: _Events) -> Transcript:
    view = LiveView()
    with Live(view.render(), console=err, refresh_per_second=8, transient=False) as live:
        async for event in events:
            view.apply(event)
            live.update(view.render())
            if isinstance(event, RoundFinished):
                live.console.print(round_summary(event.record), markup=False)
            if isinstance(event, ConsensusDone):
                return event.transcript
    raise AssertionError("the run ended without a transcript")  # pragma: no cover


async def _with_progress_lines(events: _Events, *, show: bool) -> Transcript:
    async for event in events:
        if show:
            _progress_line(event)
        if isinstance(event, ConsensusDone):
            return event.transcript
    raise AssertionError("the run ended without a transcript")  # pragma: no cover


def _progress_line(event: ConsensusEvent) -> None:
    if isinstance(event, MemberAnswered):
        r = event.response
        flag = " (truncated)" if r.truncated else ""
        err.print(f"round {event.round + 1}: {r.model} answered in {r.latency_s:.1f}s{flag}")
    elif isinstance(event, MemberFailed) and event.response.error:
        model, error = event.response.model, event.response.error
        err.print(f"round {event.round + 1}: {model} failed: {escape(error.message)}")
    elif isinstance(event, RoundFinished):
        err.print(round_summary(event.record), markup=False)


async def _chat(
    config: ConsensusConfig, system: str | None, earlier: list[Message] | None = None
) -> None:
    """One registry for the whole chat: the embedded models load on the first turn and stay
    loaded (with their prompt states) until the chat ends. `earlier`: a kept conversation
    to go on with (`--continue`)."""
    history: list[Message] = earlier or list(conversation_from([], system=system))
    err.print("conclave chat: type your message; `exit` or Ctrl-D leaves.", style="dim")
    registry = make_registry()
    store = open_cli_store(config)
    try:
        engine = ConsensusEngine(config, build_panel(config, registry))
        _show_earlier(earlier or [])
        await _chat_turns(engine, config, history, store)
    finally:
        close_cli_store(store)
        await registry.aclose()


def _show_earlier(earlier: list[Message]) -> None:
    for message in earlier:
        if message.role == "user":
            out.print(f"[bold cyan]you>[/] {escape(message.content)}")
        elif message.role == "assistant":
            out.print(f"[bold green]conclave>[/] {escape(message.content)}")


async def _chat_turns(
    engine: ConsensusEngine,
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
            transcript = await _run_engine(engine, history, show=True)
        except (ConsensusError, ConfigError) as exc:
            history.pop()
            err.print(f"error: {escape(str(exc))}", style="red")
            continue
        history.append(Message(role="assistant", content=transcript.answer))
        out.print(f"[bold green]conclave>[/] {escape(transcript.answer)}")
        keep_run(store, transcript, config)


async def _complete(spec: ModelSpec, conversation: Sequence[Message]) -> None:
    registry = make_registry()
    try:
        provider = registry.provider_for(spec)
        async for item in provider.stream(spec.model_name, conversation, spec.sampling):
            if isinstance(item, TextDelta):
                out.print(item.text, end="", markup=False)
            else:
                out.print()
                if item.truncated:
                    err.print("(stopped at --max-tokens)", style="yellow")
    finally:
        await registry.aclose()


async def _models(*, free: bool, local_only: bool, search: str | None) -> None:
    registry = make_registry()
    try:
        packs = Table("embedded model", "installed", "about", title="Embedded models (local:)")
        for info in await registry.local().list_models():
            installed = "[green]yes[/]" if info.installed else "[red]no[/]"
            packs.add_row(f"local:{info.id}", installed, escape(info.description))
        out.print(packs)
        if local_only:
            return
        listed = await registry.openrouter().list_models()
        table = Table("OpenRouter model", "context", "$/M input", "$/M output", title="OpenRouter")
        for info in listed:
            if (free and not info.free) or (search and search.lower() not in info.id.lower()):
                continue
            table.add_row(
                info.id,
                f"{info.context_length:,}" if info.context_length else "?",
                _per_million(info.prompt_price_usd),
                _per_million(info.completion_price_usd),
            )
        out.print(table)
    finally:
        await registry.aclose()


async def _write_receipt(transcript: Transcript, path: Path) -> None:
    from conclave.attestation import attester_from_settings, issue_receipt, write_receipt_file
    from conclave.settings import Settings

    receipt = await issue_receipt(transcript, attester_from_settings(Settings()))
    written = write_receipt_file(path, receipt, transcript)
    err.print(f"receipt ({receipt.mode}) written to {written}", markup=False)


def _verify_default_packs() -> None:
    from conclave.providers.packs import DEFAULT_PACKS, resolve_pack
    from conclave.settings import Settings

    models_dir = Settings().models_dir
    for name in DEFAULT_PACKS:
        try:
            path = resolve_pack(name, models_dir)
        except ConclaveError as exc:
            _fail(str(exc))
        err.print(f"local:{name}: sha256 verified ({path})", markup=False)


async def _credits() -> None:
    registry = make_registry()
    try:
        openrouter = registry.openrouter()
        credits_, key = await asyncio.gather(openrouter.credits(), openrouter.key_info())
        out.print(f"credits bought: ${credits_.total_credits:,.4f}", markup=False)
        out.print(f"credits used:   ${credits_.total_usage:,.4f}", markup=False)
        out.print(f"remaining:      ${credits_.remaining:,.4f}", markup=False)
        limit = "none" if key.limit is None else f"${key.limit:,.4f}"
        out.print(f"key {key.label!r}: limit {limit}, used ${key.usage:,.4f}", markup=False)
    finally:
        await registry.aclose()


def _per_million(price: float | None) -> str:
    return "?" if price is None else f"{price * 1_000_000:,.2f}"


def _run(coroutine: Coroutine[object, object, T]) -> T:
    """Run a command's coroutine; conclave's errors become a message and exit code 1."""
    try:
        return asyncio.run(coroutine)
    except ConclaveError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        err.print("interrupted", style="yellow")
        raise typer.Exit(130) from None


def _checked(build: Callable[[], T]) -> T:
    try:
        return build()
    except ValidationError as exc:
        _fail(format_validation_error(exc, "options"))


def _fail(message: str) -> NoReturn:
    err.print(f"error: {escape(message)}", style="red")
    raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
