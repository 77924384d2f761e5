"""Flare AI Consensus's route, so that its clients switch backends without a change:
`POST /api/routes/chat/` with `{"system_message", "user_message"}` answers
`{"response": ...}`; the transcript id and a per-member summary ride along as extra fields.
Errors carry Flare's `detail` beside OpenAI's `error` object."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from conclave.server.api_errors import ERROR_RESPONSES
from conclave.server.catalog import DEFAULT_ALIAS
from conclave.server.json_body import body_openapi, json_body
from conclave.server.response_bodies import flare_response
from conclave.server.responses import TRANSCRIPT_HEADER, json_response
from conclave.server.runs import ClientGoneError, ConsensusService, unless_disconnected
from conclave.server.schemas import FlareChatRequest, FlareChatResponse
from conclave.server.security import check_conversation
from conclave.server.service_settings import ServerSettings
from conclave.session import conversation_from

FLARE_PREFIX = "/api/routes/"


def flare_router(service: ConsensusService, settings: ServerSettings) -> APIRouter:
    router = APIRouter(tags=["flare"])

    # Both spellings are routes of their own: a redirect from one to the other would make
    # many HTTP clients drop the POST body.
    @router.post(
        "/api/routes/chat/",
        response_model=FlareChatResponse,
        responses=ERROR_RESPONSES,
        summary="Flare AI Consensus chat",
        openapi_extra=body_openapi(FlareChatRequest),
    )
    @router.post("/api/routes/chat", include_in_schema=False)
    async def flare_chat(
        request: Request,
        body: Annotated[FlareChatRequest, Depends(json_body(FlareChatRequest))],
    ) -> Response:
        """Run the default preset on Flare's system and user messages."""
        conversation = conversation_from(body.user_message, system=body.system_message or None)
        check_conversation(
            conversation,
            max_chars=settings.max_prompt_chars,
            max_messages=settings.max_messages,
            param="user_message",
        )
        run = await service.start(DEFAULT_ALIAS, conversation, stream=False)
        try:
            transcript = await unless_disconnected(request, run.transcript())
        except ClientGoneError:
            return Response(status_code=499)
        return json_response(
            flare_response(transcript, run.preset), headers={TRANSCRIPT_HEADER: transcript.id}
        )

    return router
