"""OpenAI-compatible routes: `POST /v1/chat/completions` (JSON or SSE) and `GET /v1/models`.

A client names a consensus preset as its `model`; the consensus answers as one model would.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

from fastapi import APIRouter, Request
from starlette.responses import Response

from conclave.consensus.events import ConsensusDone
from conclave.server.answers import chat_completion, completion_id, finish_reason
from conclave.server.errors import ERROR_RESPONSES, ApiError
from conclave.server.openai_stream import DONE, ChunkWriter, FinalAnswerText
from conclave.server.presets import DEFAULT_ALIAS
from conclave.server.responses import TRANSCRIPT_HEADER, error_json, json_response
from conclave.server.runs import (
    ClientGoneError,
    ConsensusRun,
    ConsensusService,
    unless_disconnected,
)
from conclave.server.schemas import ChatCompletion, ChatCompletionRequest, ModelCard, ModelList
from conclave.server.security import check_conversation
from conclave.server.settings import ServerSettings
from conclave.server.sse import (
    KEEPALIVE,
    EventStreamResponse,
    Heartbeat,
    data_frame,
    with_heartbeats,
)


def openai_router(service: ConsensusService, settings: ServerSettings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["openai"])
    started = int(time.time())

    @router.post(
        "/chat/completions",
        response_model=ChatCompletion,
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE chunks"},
            **ERROR_RESPONSES,
        },
        summary="Chat completion by consensus",
    )
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        """The consensus of the preset named by `model`, as one chat completion.

        With `stream: true` the final round's aggregate is streamed as `chat.completion.chunk`
        events ending in `data: [DONE]`; `stream_options.include_usage` adds the run's token
        totals in a last chunk. Sampling options in the body are ignored: the preset sets them.
        """
        conversation = [message.to_message() for message in body.messages]
        check_conversation(
            conversation, max_chars=settings.max_prompt_chars, max_messages=settings.max_messages
        )
        run = await service.start(body.model, conversation, stream=body.stream)
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            return EventStreamResponse(
                _chunks(run, service, settings.keepalive_s, include_usage=include_usage),
                on_close=run.aclose,
            )
        try:
            transcript = await unless_disconnected(request, run.transcript())
        except ClientGoneError:
            return Response(status_code=499)
        return json_response(
            chat_completion(transcript, run.preset), headers={TRANSCRIPT_HEADER: transcript.id}
        )

    @router.get("/models", response_model=ModelList, summary="The consensus presets")
    async def list_models() -> Response:
        """Every preset a client may name as `model`; `default` is the first preset."""
        catalog = service.catalog
        cards = []
        for name in catalog.names:
            preset = catalog.resolve(name)
            cards.append(
                ModelCard(
                    id=name,
                    created=started,
                    members=preset.members,
                    aggregator=preset.aggregator,
                    iterations=preset.config.iterations,
                    alias_of=preset.name if name == DEFAULT_ALIAS != preset.name else None,
                )
            )
        return json_response(ModelList(data=tuple(cards)))

    return router


async def _chunks(
    run: ConsensusRun, service: ConsensusService, keepalive_s: float, *, include_usage: bool
) -> AsyncGenerator[bytes, None]:
    """The stream of one run: role chunk, the final answer's pieces, finish, usage, [DONE].
    A failure after the stream opened is sent as an OpenAI error object, then the stream ends."""
    writer = ChunkWriter(
        completion_id(run.run_id), int(time.time()), run.preset.name, include_usage=include_usage
    )
    answer = FinalAnswerText()
    yield writer.role()
    try:
        async for event in with_heartbeats(run.events(), keepalive_s):
            if isinstance(event, Heartbeat):
                yield KEEPALIVE
                continue
            text = answer.text_of(event)
            if text:
                yield writer.content(text)
            if isinstance(event, ConsensusDone):
                yield writer.finish(finish_reason(event.transcript))
                if include_usage:
                    yield writer.usage(event.transcript.usage)
    except ApiError as exc:
        # As OpenAI does: an error object, and no [DONE], so the answer reads as unfinished.
        yield data_frame(error_json(exc, service.redact))
        return
    yield DONE
