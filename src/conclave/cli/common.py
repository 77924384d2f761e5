"""What every command shares: the consoles, the common options, the provider registry, and one
way to turn conclave's errors into a message and exit code 1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from conclave.config import ConsensusConfig, StrategyName, format_validation_error, load_config
from conclave.consensus.strategies import strategy_names
from conclave.errors import ConclaveError, ConfigError
from conclave.presets import embedded_config
from conclave.prompt_checks import check_prompt
from conclave.providers.registry import ProviderRegistry
from conclave.session import conversation_from
from conclave.types import Message

T = TypeVar("T")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="A consensus config (Flare's input.json or conclave's superset). "
        "Without it, the embedded local models are used.",
    ),
]
PresetConfigsOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--config",
        "-c",
        help="A consensus config; repeat for more presets (one per file, the first is "
        "`default`). Without it, the embedded local models.",
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
        help=f"How the panel agrees: {', '.join(strategy_names())} (`conclave strategies` "
        "says what each does). Default: the config's.",
    ),
]


def make_registry() -> ProviderRegistry:
    """The providers every command uses (tests replace this with fakes)."""
    return ProviderRegistry()


def fail(message: str) -> NoReturn:
    """Print `error: MESSAGE` on stderr and exit 1."""
    err.print(f"error: {escape(message)}", style="red")
    raise typer.Exit(1)


def run(coroutine: Coroutine[object, object, T]) -> T:
    """Run a command's coroutine; conclave's errors become a message and exit code 1."""
    try:
        return asyncio.run(coroutine)
    except ConclaveError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        err.print("interrupted", style="yellow")
        raise typer.Exit(130) from None


def checked(build: Callable[[], T]) -> T:
    """Build a model from command-line options; a validation error names the bad option."""
    try:
        return build()
    except ValidationError as exc:
        fail(format_validation_error(exc, "options"))


def resolve_config(
    path: Path | None, iterations: int | None = None, strategy: StrategyName | None = None
) -> ConsensusConfig:
    """The config file (or the embedded default) with the command line's overrides."""
    try:
        config = load_config(path) if path else embedded_config()
        changes: dict[str, object] = {}
        if iterations is not None:
            changes["iterations"] = iterations
        if strategy is not None:
            changes["strategy"] = strategy
        return config.with_changes(**changes) if changes else config
    except ConclaveError as exc:
        fail(str(exc))


def conversation(prompt: str, system: str | None) -> tuple[Message, ...]:
    """The command line's prompt as a conversation; a clear error for a blank prompt or
    bytes that are not UTF-8 (Python keeps those as lone surrogates)."""
    messages = conversation_from(prompt, system=system)
    try:
        check_prompt(messages)
    except ConfigError as exc:
        fail(str(exc))
    return messages
