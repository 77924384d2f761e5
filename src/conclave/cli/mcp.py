"""`conclave mcp`: the consensus as tools for MCP clients (the SDK and the web stack are
imported only when it starts)."""

from __future__ import annotations

from typing import Annotated

import typer

from conclave.cli.common import PresetConfigsOption, fail
from conclave.errors import ConclaveError


def register(app: typer.Typer) -> None:
    app.command()(mcp)


def mcp(
    config: PresetConfigsOption = None,
    http: Annotated[
        bool,
        typer.Option(
            "--http",
            help="Serve streamable HTTP at /mcp (behind CONCLAVE_API_KEYS) instead of stdio.",
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="With --http: the address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="With --http: the port to listen on (0: any free one)."
        ),
    ] = 8765,
    allow_unauthenticated: Annotated[
        bool,
        typer.Option(
            envvar="CONCLAVE_ALLOW_UNAUTHENTICATED",
            help="With --http: serve beyond loopback with no CONCLAVE_API_KEYS (anyone who "
            "reaches the port can spend your models' time and keys).",
        ),
    ] = False,
) -> None:
    """Serve the consensus to MCP clients (IDEs, desktop assistants, agents) as the tools
    ask, list_presets, list_models and get_run: over stdio, or over HTTP with --http."""
    from conclave.mcp import serve_mcp

    try:
        serve_mcp(
            config or [],
            http=http,
            host=host,
            port=port,
            allow_unauthenticated=allow_unauthenticated,
        )
    except ConclaveError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
