"""The app factory: `create_app(...)` builds one independent FastAPI app (its own presets,
providers, limits, metrics registry and transcript store); nothing is shared between apps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from conclave.attestation.receipts import Attester, attester_from_settings
from conclave.config import ConsensusConfig
from conclave.presets import load_presets
from conclave.providers.registry import ProviderRegistry
from conclave.redaction import known_secrets
from conclave.server.api_errors import (
    ApiError,
    invalid_request,
    method_not_allowed,
    not_found,
    too_large,
)
from conclave.server.catalog import build_catalog
from conclave.server.connections import DEADLINES_STATE, ConnectionDeadlines
from conclave.server.docs_routes import DOCS_PATHS, OPENAPI_PATH, docs_router
from conclave.server.events_route import events_router
from conclave.server.flare_routes import FLARE_PREFIX, flare_router
from conclave.server.metrics import ServiceMetrics
from conclave.server.middleware import (
    AccessGate,
    BodyIntake,
    ErrorGuard,
    KeyRateLimit,
    RateLimits,
    RequestMetrics,
)
from conclave.server.openai_routes import openai_router
from conclave.server.ops_routes import HEALTH_PATH, ops_router
from conclave.server.responses import TRANSCRIPT_HEADER, error_response
from conclave.server.runs import ConsensusService, RunSlots
from conclave.server.schemas import ChatCompletionRequest, ConsensusStreamRequest, FlareChatRequest
from conclave.server.security import KeyChecker, Redactor
from conclave.server.service_settings import ServerSettings
from conclave.server.transcript_routes import ReceiptDesk, transcript_router
from conclave.server.transcript_store import MemoryTranscriptStore, TranscriptStore
from conclave.server.web import WEB_PATHS, web_router
from conclave.settings import Settings
from conclave.store import StoreSettings, open_run_store

OPEN_PATHS = (HEALTH_PATH, *WEB_PATHS, *DOCS_PATHS)
"""Served without an API key: liveness, the page's files and the API docs (no data in any)."""

REQUEST_BODIES = (ChatCompletionRequest, ConsensusStreamRequest, FlareChatRequest)
"""The bodies the routes read themselves, documented in the OpenAPI schema's components."""

API_DESCRIPTION = """\
Consensus Learning over LLMs: a panel of models answers in parallel, an aggregator synthesises
one answer, improvement rounds refine it.

* `POST /v1/chat/completions`: OpenAI-compatible; `model` names a consensus preset.
* `POST /api/routes/chat/`: Flare AI Consensus's route, unchanged for its clients.
* `POST /v1/consensus/stream`: every member's answer and every round as server-sent events.

With `CONCLAVE_API_KEYS` set, every route but `/health`, the page and these docs needs
`Authorization: Bearer <key>` ("Authorize" above takes it). Without keys the service answers
only callers on its own machine, unless it was started with `--allow-unauthenticated`.
"""


def create_app(
    configs: Sequence[tuple[str, ConsensusConfig]] | None = None,
    *,
    settings: ServerSettings | None = None,
    registry: ProviderRegistry | None = None,
    store: TranscriptStore | None = None,
    attester: Attester | None = None,
) -> FastAPI:
    """A conclave HTTP app serving `configs` (name, config) as presets, the first as `default`.

    Without configs, the embedded preset. A registry passed in stays the caller's to close; one
    created here is closed when the app shuts down. Raises ConfigError or
    MissingCredentialsError when a preset could never run. `attester` vouches for receipts
    (default: what `CONCLAVE_ATTESTATION` names)."""
    settings = settings or ServerSettings()
    owns_registry = registry is None
    providers = registry or ProviderRegistry()
    named_configs = list(configs) if configs is not None else load_presets([])
    catalog = build_catalog(named_configs, providers)
    metrics = ServiceMetrics()
    redact = Redactor(_secrets(settings, providers, [config for _, config in named_configs]))
    owns_store = store is None
    runs_kept = store or _default_store(settings, providers.settings)
    service = ConsensusService(
        catalog=catalog,
        slots=RunSlots(settings.max_concurrent_runs, settings.retry_after_s, metrics),
        store=runs_kept,
        metrics=metrics,
        redact=redact,
    )

    deadlines = ConnectionDeadlines(
        request_head_timeout_s=settings.request_head_timeout_s,
        response_write_timeout_s=settings.response_write_timeout_s,
        metrics=metrics,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, ConnectionDeadlines]]:
        try:
            yield {DEADLINES_STATE: deadlines}  # for DeadlineH11Protocol
        finally:
            if owns_registry:
                await providers.aclose()
            if owns_store:
                await runs_kept.aclose()

    app = FastAPI(
        title="conclave",
        version=_version(),
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_PATH,
    )
    app.include_router(openai_router(service, settings))
    app.include_router(flare_router(service, settings))
    app.include_router(events_router(service, settings))
    app.include_router(ops_router(service))
    desk = ReceiptDesk(attester or attester_from_settings(providers.settings), runs_kept)
    app.include_router(transcript_router(service, desk))
    app.include_router(web_router())
    app.include_router(docs_router(app.title))
    _install_error_handlers(app, redact, settings.max_body_bytes)

    # add_middleware puts each one outside the ones before it: this is innermost first.
    app.add_middleware(
        BodyIntake,
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.request_body_timeout_s,
        redact=redact,
        metrics=metrics,
    )
    if settings.rate_limit_per_minute:
        app.add_middleware(
            KeyRateLimit,
            limits=RateLimits(settings.rate_limit_per_minute),
            redact=redact,
            open_paths=(HEALTH_PATH,),
        )
    app.add_middleware(
        AccessGate,
        keys=KeyChecker(key.get_secret_value() for key in settings.api_keys),
        redact=redact,
        open_paths=OPEN_PATHS,
        allow_unauthenticated=settings.allow_unauthenticated,
    )
    if settings.cors_origins:
        any_origin = "*" in settings.cors_origins
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_credentials=not any_origin,  # never `*` with credentials
            allow_methods=["GET", "POST", "OPTIONS"],
            # Any request header: OpenAI's JavaScript client sends `x-stainless-*` headers
            # (and adds new ones); the bearer key, not a header list, is what guards the API.
            allow_headers=["*"],
            expose_headers=[TRANSCRIPT_HEADER, "retry-after"],
        )
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(ErrorGuard, redact=redact)
    app.state.service = service
    keyed_paths = OPEN_PATHS if settings.api_keys else None
    app.openapi = lambda: _openapi_without_422(app, keyed_paths)  # type: ignore[method-assign]
    return app


def _openapi_without_422(app: FastAPI, open_paths: Collection[str] | None) -> dict[str, object]:
    """FastAPI's schema, less the 422 it documents on every route (invalid bodies are 400s
    here, as OpenAI answers them; ERROR_RESPONSES documents those), with the request bodies
    the routes read themselves (see `json_body`) and, when the service has API keys, the
    bearer scheme every route but `open_paths` needs."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        paths = schema.get("paths", {})
        for operations in paths.values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        _, bodies = models_json_schema(
            [(model, "validation") for model in REQUEST_BODIES],
            ref_template="#/components/schemas/{model}",
        )
        schemas.update(bodies.get("$defs", {}))
        if open_paths is not None:
            _declare_bearer_keys(schema, open_paths)
        app.openapi_schema = schema
    return app.openapi_schema


def _declare_bearer_keys(schema: dict[str, Any], open_paths: Collection[str]) -> None:
    """Every operation needs a bearer key but those of `open_paths` (Swagger UI's "Authorize"
    then sends it)."""
    schema["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "A CONCLAVE_API_KEYS key"}
    }
    schema["security"] = [{"bearer": []}]
    for path, operations in schema.get("paths", {}).items():
        if path in open_paths:
            for operation in operations.values():
                operation["security"] = []


def _install_error_handlers(app: FastAPI, redact: Redactor, max_body_bytes: int) -> None:
    def respond(request: Request, error: ApiError) -> Response:
        return error_response(error, redact, flare=request.url.path.startswith(FLARE_PREFIX))

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return respond(request, exc)

    async def on_invalid_body(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return respond(request, invalid_request(exc.errors()))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            error = not_found(f"no route {request.method} {request.url.path}")
        elif exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "")
            error = method_not_allowed(request.method, request.url.path, allow)
        elif exc.status_code == 413:
            error = too_large(max_body_bytes)
        else:
            error = ApiError(exc.status_code, str(exc.detail), code=None, headers=exc.headers)
        return respond(request, error)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_invalid_body)
    app.add_exception_handler(HTTPException, on_http_error)


def _default_store(settings: ServerSettings, core: Settings) -> TranscriptStore:
    """The run store the environment names (`CONCLAVE_STORE_*`), or memory when disabled.

    The service hands it only transcripts it has redacted already (see `runs.ConsensusRun`),
    so the store does not scan them for secrets a second time."""
    store_settings = StoreSettings()
    if not store_settings.enabled:
        return MemoryTranscriptStore(
            settings.transcripts_kept, max_bytes=settings.transcripts_max_bytes
        )
    return open_run_store(home=core.home, settings=store_settings)


def prepare_store() -> None:
    """Open (and migrate) the run store once, before `--workers` processes start, so that a
    bad `CONCLAVE_STORE_URL` stops the start with its message and no two workers migrate."""
    store_settings = StoreSettings()
    if store_settings.enabled:
        open_run_store(home=Settings().home, settings=store_settings).close()


def _version() -> str:
    try:
        return metadata.version("conclave")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _secrets(
    settings: ServerSettings, registry: ProviderRegistry, configs: Sequence[ConsensusConfig]
) -> list[str]:
    """Every secret the process knows: the service's keys and the providers' keys."""
    secrets = [key.get_secret_value() for key in settings.api_keys]
    return secrets + known_secrets(registry.settings, configs)
