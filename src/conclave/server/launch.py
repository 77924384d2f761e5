"""`conclave serve`: validate everything first, then run uvicorn on the app.

A bad config, a missing key or a bad `CONCLAVE_*` variable stops the start with the same
message `conclave config check` prints (the CLI turns the ConfigError into exit code 1)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from uvicorn.supervisors import Multiprocess

from conclave.config import ConsensusConfig, format_validation_error
from conclave.errors import ConfigError
from conclave.presets import load_presets
from conclave.providers.readiness import check_embedded_models
from conclave.providers.registry import ProviderRegistry
from conclave.server.app import create_app, prepare_store
from conclave.server.catalog import build_catalog
from conclave.server.connections import DeadlineH11Protocol
from conclave.server.metrics import MULTIPROCESS_VARIABLE
from conclave.server.security import Redactor, is_loopback
from conclave.server.service_settings import ServerSettings
from conclave.settings import Settings

LOGGERS = ("conclave", "uvicorn", "uvicorn.error", "uvicorn.access")

CONFIGS_VARIABLE = "CONCLAVE_SERVE_CONFIGS"
"""How the parent hands the config files to worker processes (a JSON list of paths)."""


def serve(
    *,
    host: str,
    port: int,
    config_paths: Sequence[Path],
    workers: int = 1,
    access_log: bool = True,
    log_level: str = "info",
    allow_unauthenticated: bool = False,
) -> None:
    """Build the app (failing fast on any configuration problem) and serve it until stopped.
    Refuses (ConfigError) to serve beyond loopback with no API keys unless
    `allow_unauthenticated` (see `unauthenticated_refusal`).

    With `workers > 1`, uvicorn runs that many processes on one socket, each with its own app
    built from the same files; Prometheus metrics are then summed across them (through
    prometheus_client's multiprocess mode) and runs are kept in the one store they share,
    while the cap on concurrent runs is per process."""
    settings = load_server_settings()
    if allow_unauthenticated:
        # The flag opens the gate as the variable does, here and in every worker process.
        os.environ["CONCLAVE_ALLOW_UNAUTHENTICATED"] = "1"
        settings = settings.model_copy(update={"allow_unauthenticated": True})
    configs = load_presets(config_paths)
    models_dir = Settings().models_dir
    for name, preset_config in configs:
        check_embedded_models(preset_config, models_dir, source=f"preset {name!r}")
    refusal = unauthenticated_refusal(host, settings, allow_unauthenticated)
    if workers == 1:
        app = create_app(configs, settings=settings)
        if refusal is not None:
            raise ConfigError(refusal)
        config = _uvicorn_config(app, host, port, 1, access_log, log_level)
        # uvicorn.Config has set up uvicorn's loggers; the filter goes on their handlers.
        install_redaction(app.state.service.redact)
        tune_garbage_collector()
        uvicorn.Server(config).run()
        return
    _check_presets(configs)
    prepare_store()
    if refusal is not None:
        raise ConfigError(refusal)
    metrics_dir = tempfile.mkdtemp(prefix="conclave-metrics-")
    os.environ[CONFIGS_VARIABLE] = json.dumps([str(path.resolve()) for path in config_paths])
    os.environ[MULTIPROCESS_VARIABLE] = metrics_dir
    try:
        config = _uvicorn_config(WORKER_APP, host, port, workers, access_log, log_level)
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


WORKER_APP = "conclave.server.launch:worker_app"


def unauthenticated_refusal(host: str, settings: ServerSettings, allowed: bool) -> str | None:
    """Why the service must not start on `host`: anyone who reaches it could spend the models'
    time and keys and read every kept run, with no API key. None when keys are set, the
    address is loopback, or the operator allowed unauthenticated access (`allowed`, or
    `CONCLAVE_ALLOW_UNAUTHENTICATED`)."""
    if settings.api_keys or allowed or settings.allow_unauthenticated or is_loopback(host):
        return None
    return (
        f"refusing to serve on {host} with no API keys: anyone who can reach this address "
        "could run consensus on your models and keys and read every kept run. Set "
        "CONCLAVE_API_KEYS (comma-separated keys of at least 8 characters; clients send one "
        "as `Authorization: Bearer <key>`), serve on 127.0.0.1, or pass "
        "--allow-unauthenticated (CONCLAVE_ALLOW_UNAUTHENTICATED=1) if that is meant."
    )


def _uvicorn_config(
    app: FastAPI | str, host: str, port: int, workers: int, access_log: bool, log_level: str
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        workers=workers,
        factory=isinstance(app, str),
        access_log=access_log,
        log_level=log_level,
        server_header=False,
        proxy_headers=True,
        backlog=4096,
        timeout_graceful_shutdown=30,
        http=DeadlineH11Protocol,
    )


def worker_app() -> FastAPI:
    """The app of one worker process (uvicorn calls this factory in each of them)."""
    paths = [Path(path) for path in json.loads(os.environ.get(CONFIGS_VARIABLE, "[]"))]
    app = create_app(load_presets(paths), settings=load_server_settings())
    install_redaction(app.state.service.redact)
    tune_garbage_collector()
    return app


def tune_garbage_collector() -> None:
    """Fewer, cheaper cyclic collections for a server process (measured: 7-10% less CPU per
    upstream call). Everything alive at start (modules, the app) is frozen out of the
    collector's scans, and the youngest generation is collected every 50,000 allocations
    instead of 700: a run allocates thousands of short-lived objects, nearly all freed by
    reference counting anyway."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _check_presets(configs: Sequence[tuple[str, ConsensusConfig]]) -> None:
    """Everything `create_app` would refuse, refused here, before any worker starts."""
    registry = ProviderRegistry()
    try:
        build_catalog(configs, registry)
    finally:
        asyncio.run(registry.aclose())


def load_server_settings() -> ServerSettings:
    try:
        return ServerSettings()
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "environment (CONCLAVE_*)")) from None


class RedactingFilter(logging.Filter):
    """Redacts secrets from every record (its message and its arguments, keeping their shape
    for formatters such as uvicorn's access log) and turns a traceback into one line."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self._redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: self._clean(value) for key, value in record.args.items()}
        if record.exc_info:
            error = record.exc_info[1]
            if error is not None:
                note = f" ({type(error).__name__}: {self._redact(str(error))})"
                record.msg = f"{record.msg}{note.replace('%', '%%') if record.args else note}"
            record.exc_info = None
            record.exc_text = None
        record.stack_info = None
        return True

    def _clean(self, value: object) -> object:
        return self._redact(value) if isinstance(value, str) else value


def install_redaction(redact: Redactor) -> None:
    """Log conclave's records beside uvicorn's, and filter every handler of both (and the
    root's) through the redactor."""
    conclave_log = logging.getLogger("conclave")
    if not conclave_log.handlers:
        handler: logging.Handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        conclave_log.addHandler(handler)
        conclave_log.setLevel(logging.INFO)
        conclave_log.propagate = False
    redacting = RedactingFilter(redact)
    handlers = set(logging.getLogger().handlers)
    for name in LOGGERS:
        handlers.update(logging.getLogger(name).handlers)
    for handler in handlers:
        handler.addFilter(redacting)
