"""`conclave serve`: the HTTP service (the web stack is imported only when it starts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conclave.cli.common import fail
from conclave.errors import ConclaveError


def register(app: typer.Typer) -> None:
    app.command()(serve)


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
        fail(str(exc))
