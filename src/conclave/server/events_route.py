"""`POST /v1/consensus/stream`: every engine event of a run as it happens (SSE).

Each event is `event: <kind>` with the event's JSON as data (the same events the CLI's live
view shows): run_started, round_started, member_answered, member_failed, aggregate_delta,
aggregate_restarted (the round's aggregate text so far is void: clear it),
aggregate_finished, round_finished, and done with the whole transcript. A failed run ends
with `event: error` carrying the OpenAI-shaped error and the failures.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from conclave.consensus.events import ConsensusEvent
from conclave.server.api_errors import ERROR_RESPONSES, ApiError
from conclave.server.json_body import body_openapi, json_body
from conclave.server.responses import error_json
from conclave.server.runs import ConsensusRun, ConsensusService
from conclave.server.schemas import ConsensusStreamRequest
from conclave.server.security import check_conversation
from conclave.server.service_settings import ServerSettings
from conclave.server.sse import EventStreamResponse, event_frame, frames_with_keepalives


def events_router(service: ConsensusService, settings: ServerSettings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["consensus"])

    @router.post(
        "/consensus/stream",
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "The run's events"},
            **ERROR_RESPONSES,
        },
        summary="Every event of a consensus run",
        openapi_extra=body_openapi(ConsensusStreamRequest),
    )
    async def consensus_stream(
        body: Annotated[ConsensusStreamRequest, Depends(json_body(ConsensusStreamRequest))],
    ) -> Response:
        """Members' answers, failures, aggregate tokens and rounds, as they happen."""
        conversation = [message.to_message() for message in body.messages]
        check_conversation(
            conversation, max_chars=settings.max_prompt_chars, max_messages=settings.max_messages
        )
        run = await service.start(body.model, conversation, stream=True)
        return EventStreamResponse(_frames(run, service, settings.keepalive_s), on_close=run.aclose)

    return router


async def _frames(
    run: ConsensusRun, service: ConsensusService, keepalive_s: float
) -> AsyncGenerator[bytes, None]:
    def render(event: ConsensusEvent) -> tuple[bytes]:
        return (event_frame(event.kind, event.model_dump_json()),)

    try:
        async with aclosing(frames_with_keepalives(run.events(), keepalive_s, render)) as frames:
            async for frame in frames:
                yield frame
    except ApiError as exc:
        yield event_frame("error", error_json(exc, service.redact))
