"""`conclave serve`: the HTTP service (the web stack is imported only when it starts)."""

from __future__ import annotations

from typing import Annotated

import typer

from conclave.cli.common import PresetConfigsOption, fail
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
    config: PresetConfigsOption = None,
    workers: Annotated[
        int,
        typer.Option(
            envvar="CONCLAVE_WORKERS", min=1, help="Server processes (one per core at most)."
        ),
    ] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
    allow_unauthenticated: Annotated[
        bool,
        typer.Option(
            envvar="CONCLAVE_ALLOW_UNAUTHENTICATED",
            help="Serve anyone who reaches the port with no CONCLAVE_API_KEYS: they can spend "
            "your models' time and keys and read every kept run.",
        ),
    ] = False,
) -> None:
    """Serve the consensus over HTTP: Flare's route, an OpenAI-compatible /v1, /metrics.

    Closed by default: give clients keys with CONCLAVE_API_KEYS (comma-separated; they send
    `Authorization: Bearer <key>`). Without keys the service refuses to listen beyond loopback
    (and answers only callers on this machine) unless --allow-unauthenticated is given."""
    from conclave.server.launch import serve as serve_http

    try:
        serve_http(
            host=host,
            port=port,
            config_paths=config or [],
            workers=workers,
            access_log=access_log,
            allow_unauthenticated=allow_unauthenticated,
        )
    except ConclaveError as exc:
        fail(str(exc))
