"""Operations: `GET /health` (open: anyone learns that the service is up; a trusted caller
also sees the presets, the runs in flight and every breaker) and `GET /metrics`
(Prometheus, behind the API key)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from conclave.consensus.health import member_key
from conclave.server.catalog import Preset
from conclave.server.metrics import CONTENT_TYPE
from conclave.server.middleware import caller_trusted
from conclave.server.responses import json_response
from conclave.server.runs import ConsensusService
from conclave.server.schemas import Health, HealthStatus, PresetBreakers

HEALTH_PATH = "/health"


def ops_router(service: ConsensusService) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get(
        HEALTH_PATH,
        response_model=Health | HealthStatus,
        summary="Liveness, and the breakers' states for a trusted caller",
    )
    async def health(request: Request) -> Response:
        """`{"status": "ok"}` for anyone. With a valid API key (or from this machine, when the
        service has no keys) also the presets, the runs in flight and, per preset, the
        breakers of its members, its aggregator and its fallback aggregator (`open`: resting
        after repeated failures, skipped until its next probe)."""
        if not caller_trusted(request.scope):
            return json_response(HealthStatus())
        return json_response(
            Health(
                presets=service.catalog.names,
                runs_in_flight=service.slots.in_use,
                breakers={
                    preset.name: preset_breakers(preset) for preset in service.catalog.presets
                },
            )
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        for preset in service.catalog.presets:
            service.metrics.observe_breakers(preset.name, preset_breakers(preset))
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    return router


def preset_breakers(preset: Preset) -> PresetBreakers:
    """The breakers of a preset's models, by role (a model called in two roles, member and
    aggregator, has one breaker: it shows in both)."""
    panel = preset.engine.panel
    states = {status.member: status for status in preset.engine.health.snapshot()}
    members = dict.fromkeys(member_key(member.spec) for member in panel.members)
    fallback = panel.fallback
    return PresetBreakers(
        members=tuple(states[key] for key in members if key in states),
        aggregator=states.get(member_key(panel.aggregator.spec)),
        fallback_aggregator=states.get(member_key(fallback.spec)) if fallback else None,
    )
