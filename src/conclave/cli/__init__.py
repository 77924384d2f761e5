"""The `conclave` command line. Each command group lives in a module of its own that exposes
`register(app)`; adding a group is one module and one entry in `_GROUPS`.

The web stack, the attestation layer and Ray are imported inside the commands that use them,
so `conclave ask` starts without loading them."""

from __future__ import annotations

import typer

from conclave.cli import (
    ask,
    batch,
    complete,
    config_cmds,
    evaluate,
    log,
    mcp,
    models,
    serve,
    strategies,
    verify,
)

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Consensus Learning over LLMs: a panel answers, an aggregator synthesises, rounds refine.",
)

_GROUPS = (ask, complete, models, strategies, config_cmds, log, batch, evaluate, verify, serve, mcp)
for _group in _GROUPS:
    _group.register(app)


def main() -> None:
    """Entry point of the `conclave` console script."""
    app()


__all__ = ["app", "main"]
