"""Operations: `GET /health` (never behind the API key) and `GET /metrics` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from conclave.server.metrics import CONTENT_TYPE
from conclave.server.responses import json_response
from conclave.server.runs import ConsensusService
from conclave.server.schemas import Health

HEALTH_PATH = "/health"


def ops_router(service: ConsensusService) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get(HEALTH_PATH, response_model=Health, summary="Liveness")
    async def health() -> Response:
        """`ok`, the presets, and the runs in flight. Needs no API key."""
        return json_response(
            Health(presets=service.catalog.names, runs_in_flight=service.slots.in_use)
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    return router
