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
        """`ok`, the presets, the runs in flight, and the members resting or not. Needs no API
        key."""
        return json_response(
            Health(
                presets=service.catalog.names,
                runs_in_flight=service.slots.in_use,
                members={
                    preset.name: preset.engine.health.snapshot()
                    for preset in service.catalog.presets
                },
            )
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        for preset in service.catalog.presets:
            service.metrics.observe_member_health(preset.name, preset.engine.health.snapshot())
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    return router
