"""`conclave strategies`: the registered strategies, from the registry the config reads."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from conclave.cli.common import out
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
    table = Table("strategy", "how the panel agrees")
    for strategy in registered_strategies():
        table.add_row(strategy.name, strategy.summary)
    out.print(table)


def strategy_table_markdown() -> str:
    """Every registered strategy as a row of a Markdown table."""
    rows = [f"| `{s.name}` | {s.summary} |" for s in registered_strategies()]
    return "\n".join(["| strategy | how the panel agrees |", "|---|---|", *rows])
