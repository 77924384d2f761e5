"""`conclave strategies`: the registered strategies, from the registry the config reads."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from conclave.cli.common import out
from conclave.config import StrategyOptions
from conclave.consensus.strategies import registered_strategies


def register(app: typer.Typer) -> None:
    app.command()(strategies)


def strategies(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="A Markdown table (the one the README shows).")
    ] = False,
) -> None:
    """The strategies a config's `strategy` (or `--strategy`) can name, with what each does."""
    if markdown:
        out.print(strategy_table_markdown(), markup=False)
        return
    table = Table("strategy", "how the panel agrees", "options (default)")
    for strategy in registered_strategies():
        table.add_row(strategy.name, strategy.summary, _options(strategy.options_type))
    out.print(table)


def strategy_table_markdown() -> str:
    """Every registered strategy as a row of a Markdown table, with its options and their
    defaults (set them in the config's `strategy_options`)."""
    rows = [
        f"| `{s.name}` | {s.summary} | {_options(s.options_type) or '-'} |"
        for s in registered_strategies()
    ]
    header = ["| strategy | how the panel agrees | options (default) |", "|---|---|---|"]
    return "\n".join([*header, *rows])


def _options(options_type: type[StrategyOptions]) -> str:
    return ", ".join(
        f"`{name}` ({json.dumps(field.get_default(call_default_factory=True), default=str)})"
        for name, field in options_type.model_fields.items()
    )
