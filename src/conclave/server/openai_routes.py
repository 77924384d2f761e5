"""OpenAI-compatible routes: `POST /v1/chat/completions` (JSON or SSE), `GET /v1/models` and
`GET /v1/models/{model}`.

A client names a consensus preset as its `model`; the consensus answers as one model would.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.events import ConsensusDone, ConsensusEvent
from conclave.consensus.forms import asks_for_a_form
from conclave.consensus.transcript import Transcript
from conclave.server.api_errors import ERROR_RESPONSES, ApiError, aggregate_broken_off
from conclave.server.catalog import DEFAULT_ALIAS, STRATEGIES
from conclave.server.chat_options import chat_options
from conclave.server.json_body import body_openapi, json_body
from conclave.server.openai_stream import DONE, ChunkWriter, FinalAnswerText
from conclave.server.response_bodies import (
    chat_completion,
    citation_annotations,
    completion_id,
    consensus_summary,
    finish_reason,
)
from conclave.server.response_format import AnswerFormat, conform
from conclave.server.responses import TRANSCRIPT_HEADER, error_json, json_response
from conclave.server.runs import (
    ClientGoneError,
    ConsensusRun,
    ConsensusService,
    Finisher,
    unless_disconnected,
)
from conclave.server.schemas import ChatCompletion, ChatCompletionRequest, ModelCard, ModelList
from conclave.server.security import check_conversation
from conclave.server.service_settings import ServerSettings
from conclave.server.sse import EventStreamResponse, data_frame, frames_with_keepalives


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
        openapi_extra=body_openapi(ChatCompletionRequest),
    )
    async def chat_completions(
        request: Request,
        body: Annotated[ChatCompletionRequest, Depends(json_body(ChatCompletionRequest))],
    ) -> Response:
        """The consensus of the preset named by `model`, as one chat completion.

        With `stream: true` the final round's aggregate is streamed as `chat.completion.chunk`
        events ending in `data: [DONE]`; `stream_options.include_usage` adds the run's token
        totals in a last chunk. The sampling options (`max_tokens`, `temperature`, `top_p`,
        `seed`, `stop`, the penalties) apply to every model call of the run; an option a
        consensus cannot honour is refused with a 400.
        """
        options = chat_options(body)
        conversation = [message.to_message() for message in body.messages]
        check_conversation(
            conversation, max_chars=settings.max_prompt_chars, max_messages=settings.max_messages
        )
        finish = _conformer(options.answer_format) if options.answer_format is not None else None
        # A grounded answer may be revised by its citation check after the aggregator wrote
        # it: it is streamed whole once checked, not piece by piece.
        run = await service.start(
            body.model,
            conversation,
            stream=options.stream,
            finish=finish,
            sampling=options.sampling,
            keep=options.keep,
            documents=body.documents,
            aggregate_pieces=body.documents is None,
        )
        if options.stream:
            return EventStreamResponse(
                _chunks(
                    run,
                    service,
                    settings.keepalive_s,
                    include_usage=options.include_usage,
                    asks_form=asks_for_a_form(conversation),
                ),
                on_close=run.aclose,
            )
        try:
            transcript = await unless_disconnected(request, run.transcript())
        except ClientGoneError:
            return Response(status_code=499)
        return json_response(
            chat_completion(transcript, run.preset), headers={TRANSCRIPT_HEADER: transcript.id}
        )

    def card(name: str) -> ModelCard:
        preset = service.catalog.resolve(name)
        return ModelCard(
            id=name,
            created=started,
            members=preset.members,
            aggregator=preset.aggregator,
            iterations=preset.config.iterations,
            alias_of=preset.name if name == DEFAULT_ALIAS != preset.name else None,
            strategy=preset.config.strategy,
            strategies=STRATEGIES,
        )

    @router.get("/models", response_model=ModelList, summary="The consensus presets")
    async def list_models() -> Response:
        """Every preset a client may name as `model`; `default` is the first preset."""
        return json_response(ModelList(data=tuple(card(name) for name in service.catalog.names)))

    @router.get(
        "/models/{model}",
        response_model=ModelCard,
        responses={404: ERROR_RESPONSES[404]},
        summary="One consensus preset",
    )
    async def retrieve_model(model: str) -> Response:
        """The preset a client may name as `model` (404 with the known names otherwise)."""
        return json_response(card(model))

    return router


def _conformer(answer_format: AnswerFormat) -> Callable[[ConsensusEngine], Finisher]:
    def for_engine(engine: ConsensusEngine) -> Finisher:
        aggregator = engine.panel.aggregator
        config = engine.config
        timeout_s = config.aggregator_spec.model.timeout_s or config.timeout_s

        async def finish(transcript: Transcript) -> Transcript:
            return await conform(transcript, answer_format, aggregator, timeout_s)

        return finish

    return for_engine


async def _chunks(
    run: ConsensusRun,
    service: ConsensusService,
    keepalive_s: float,
    *,
    include_usage: bool,
    asks_form: bool = False,
) -> AsyncGenerator[bytes, None]:
    """The stream of one run: role chunk, the final answer's pieces, finish, usage, [DONE].
    A failure after the stream opened is sent as an OpenAI error object, then the stream ends."""
    writer = ChunkWriter(
        completion_id(run.run_id), int(time.time()), run.preset.name, include_usage=include_usage
    )
    answer = FinalAnswerText(asks_form=asks_form)

    def render(event: ConsensusEvent) -> Iterator[bytes]:
        working = answer.reasoning_of(event)
        if working:
            yield writer.reasoning(working)
        text = answer.text_of(event)
        if text:
            yield writer.content(text)
        if isinstance(event, ConsensusDone):
            if answer.broken_off is not None:
                raise aggregate_broken_off(answer.broken_off, event.transcript)
            if event.transcript.citations:
                yield writer.annotations(citation_annotations(event.transcript))
            summary = consensus_summary(event.transcript, run.preset)
            yield writer.finish(finish_reason(event.transcript), summary)
            if include_usage:
                yield writer.usage(event.transcript.usage)

    yield writer.role()
    try:
        async with aclosing(frames_with_keepalives(run.events(), keepalive_s, render)) as frames:
            async for frame in frames:
                yield frame
    except ApiError as exc:
        # As OpenAI does: an error object, and no [DONE], so the answer reads as unfinished.
        yield data_frame(error_json(exc, service.redact))
        return
    yield DONE
