"""The service's request and response bodies, as typed models.

Requests are read strictly, as OpenAI reads them (see `json_body`): types are not coerced
(`"stream": "yes"` is not true), numbers keep OpenAI's ranges, and a parameter the API does not
know is refused rather than ignored. `/v1/chat/completions` takes every parameter of OpenAI's
chat API: the sampling ones are applied to every model call of the run (see
`request_sampling`); those a consensus cannot honour are refused with a 400 saying why (see
`chat_options`). Responses are OpenAI's shapes with conclave's additions in extra fields old
clients ignore.

Unions name their members `<...>` (pydantic puts that name in an error's location; the error
messages leave it out).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from conclave.config import StrategyName
from conclave.consensus.citations import Citation, RetrievedPassage
from conclave.consensus.health import MemberHealthStatus
from conclave.consensus.transcript import Agreement, DecidedBy
from conclave.types import Message, Role

# --- requests ---------------------------------------------------------------------------------

DOCUMENTS_DESCRIPTION = (
    "conclave's own: ground the answer in this document collection of the server (see "
    "`conclave docs`): the members are given its passages, numbered, and cite them; the "
    "citations are checked, and the answer says so when the documents do not hold it. The "
    "answer's citations come back as `message.annotations` (url_citation) and in "
    "`conclave.grounding`."
)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class TextPart(_Request):
    """A text part of a message's content (images and audio are not supported)."""

    type: Literal["text"]
    text: str


def _part_kind(value: object) -> str | None:
    if isinstance(value, dict) and value.get("type") == "text":
        return "<text part>"
    return None


ContentPart = Annotated[
    Annotated[TextPart, Tag("<text part>")],
    Discriminator(
        _part_kind,
        custom_error_type="unsupported_content",
        custom_error_message='only text parts (`{"type": "text", "text": ...}`) are '
        "supported; a consensus of text models takes no images, audio or files",
    ),
]


def _content_kind(value: object) -> str | None:
    if isinstance(value, str):
        return "<string>"
    if isinstance(value, list):
        return "<parts>"
    return None


MessageContent = Annotated[
    Annotated[str, Tag("<string>")] | Annotated[list[ContentPart], Tag("<parts>")],
    Discriminator(
        _content_kind,
        custom_error_type="invalid_type",
        custom_error_message="a string or an array of content parts",
    ),
]


class ChatMessage(_Request):
    """One message as OpenAI's API takes it. `developer` is read as `system`."""

    role: Literal["system", "developer", "user", "assistant"]
    content: MessageContent

    def to_message(self) -> Message:
        role: Role = "system" if self.role == "developer" else self.role
        text = (
            self.content
            if isinstance(self.content, str)
            else "".join(part.text for part in self.content)
        )
        return Message(role=role, content=text)


class StreamOptions(_Request):
    include_usage: bool = False


class TextFormat(_Request):
    """Plain text, the default."""

    type: Literal["text"]


class JsonObjectFormat(_Request):
    """The answer must be one JSON object."""

    type: Literal["json_object"]


class JsonSchemaSpec(_Request):
    """A JSON Schema the answer must satisfy, as OpenAI's `json_schema` format names it."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, allow_inf_nan=False, populate_by_name=True
    )

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    json_schema: dict[str, object] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class JsonSchemaFormat(_Request):
    """The answer must be JSON satisfying `json_schema.schema`."""

    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


_FORMATS = {"text": "<text>", "json_object": "<json_object>", "json_schema": "<json_schema>"}


def _format_kind(value: object) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else None
    return _FORMATS.get(kind) if isinstance(kind, str) else None


ResponseFormat = Annotated[
    Annotated[TextFormat, Tag("<text>")]
    | Annotated[JsonObjectFormat, Tag("<json_object>")]
    | Annotated[JsonSchemaFormat, Tag("<json_schema>")],
    Discriminator(
        _format_kind,
        custom_error_type="invalid_value",
        custom_error_message="`type` must be one of 'text', 'json_object' or 'json_schema'",
    ),
]


def _stop_kind(value: object) -> str | None:
    if isinstance(value, str):
        return "<string>"
    if isinstance(value, list):
        return "<strings>"
    return None


StopSequence = Annotated[str, Field(min_length=1)]

StopSequences = Annotated[
    Annotated[StopSequence, Tag("<string>")]
    | Annotated[list[StopSequence], Field(max_length=4), Tag("<strings>")],
    Discriminator(
        _stop_kind,
        custom_error_type="invalid_type",
        custom_error_message="a string or an array of up to 4 strings",
    ),
]

Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]


class ChatCompletionRequest(_Request):
    """`POST /v1/chat/completions`: `model` names a consensus preset.

    Sampling parameters (`max_tokens`, `max_completion_tokens`, `temperature`, `top_p`, `seed`,
    `stop`, `presence_penalty`, `frequency_penalty`) apply to every model call of the run:
    each member's answers and the aggregator's. `store: false` keeps the run out of the run
    store. The other parameters are read only to refuse values a consensus cannot honour."""

    model: str = Field(min_length=1, examples=["default"])
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Caps every model call of the run (members, aggregator), so the answer too.",
    )
    max_completion_tokens: int | None = Field(
        default=None, ge=1, description="The same as `max_tokens` (OpenAI's newer name)."
    )
    temperature: float | None = Field(
        default=None, ge=0.0, le=2.0, description="Replaces every model's temperature."
    )
    top_p: float | None = Field(
        default=None, gt=0.0, le=1.0, description="Replaces every model's top_p."
    )
    seed: int | None = Field(default=None, description="Replaces every model's seed.")
    stop: StopSequences | None = Field(
        default=None,
        description="Where every model call stops, besides the preset's own stop sequences.",
    )
    presence_penalty: Penalty | None = Field(default=None, description="Sent with every call.")
    frequency_penalty: Penalty | None = Field(default=None, description="Sent with every call.")
    store: bool | None = Field(
        default=None, description="`false`: the run is not kept (the default keeps it)."
    )
    n: int | None = Field(
        default=None, ge=1, le=128, description="Only 1 is supported: the consensus is one answer."
    )
    response_format: ResponseFormat | None = Field(
        default=None,
        description="`json_object` or `json_schema`: the final answer is made to conform "
        "(checked, and rewritten by the aggregator once if it does not); not with `stream`.",
    )
    logprobs: bool | None = Field(default=None, description="Only `false` is supported.")
    top_logprobs: int | None = Field(default=None, ge=0, le=20, description="Not supported.")
    logit_bias: dict[str, int] | None = Field(
        default=None, description="Not supported (token ids differ between models)."
    )
    user: str | None = Field(default=None, description="Not supported.")
    metadata: dict[str, str] | None = Field(default=None, description="Not supported.")
    tools: list[object] | None = Field(
        default=None, description="Not supported: a non-empty list is refused with a 400."
    )
    tool_choice: object = Field(
        default=None, description="Only `none` (or leaving it out) is accepted."
    )
    parallel_tool_calls: bool | None = Field(default=None, description="Not supported.")
    functions: list[object] | None = Field(
        default=None, description="Not supported (the legacy form of `tools`)."
    )
    function_call: object = Field(
        default=None, description="Only `none` (or leaving it out) is accepted."
    )
    documents: str | None = Field(
        default=None,
        min_length=1,
        description=DOCUMENTS_DESCRIPTION,
        examples=["manual"],
    )
    modalities: list[str] | None = Field(default=None, description='Only `["text"]`.')
    audio: object = Field(default=None, description="Not supported.")
    prediction: object = Field(default=None, description="Not supported.")
    reasoning_effort: object = Field(default=None, description="Not supported.")
    verbosity: object = Field(default=None, description="Not supported.")
    service_tier: object = Field(default=None, description="Not supported.")
    web_search_options: object = Field(default=None, description="Not supported.")
    prompt_cache_key: object = Field(default=None, description="Not supported.")
    safety_identifier: object = Field(default=None, description="Not supported.")


class ConsensusStreamRequest(_Request):
    """`POST /v1/consensus/stream`: the same conversation, answered with every event."""

    model: str = Field(default="default", min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    documents: str | None = Field(default=None, min_length=1, description=DOCUMENTS_DESCRIPTION)


class FlareChatRequest(_Request):
    """Flare AI Consensus's chat body. `system_message` may be left out here; other fields
    are ignored, as Flare's own server ignores them."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    system_message: str = ""
    user_message: str = Field(min_length=1)


# --- responses --------------------------------------------------------------------------------


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorDetail(_Response):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class MemberFailure(_Response):
    model: str
    round: int
    type: str
    message: str


class ErrorBody(_Response):
    """OpenAI's error shape; failed runs add the transcript id and the members' failures."""

    error: ErrorDetail
    transcript_id: str | None = None
    failures: tuple[MemberFailure, ...] | None = None
    detail: str | None = Field(
        default=None, description="The message again, on Flare's route, as Flare sends it."
    )


class MemberSummary(_Response):
    """What one model of the panel did over the whole run."""

    model: str
    answered: int
    failed: int
    failures: tuple[MemberFailure, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0


FALLBACKS: frozenset[DecidedBy] = frozenset(
    {"fallback_aggregator", "fallback_vote", "previous_round"}
)
"""Who writes a round's consensus when its combiner did not."""


class FallbackSummary(_Response):
    """A round whose consensus a fallback wrote because the aggregator (or an earlier
    fallback) did not: who wrote it, and the calls that did not (failed, or skipped while
    their model rests after repeated failures: `type` is then `cooldown`)."""

    round: int
    decided_by: DecidedBy
    failed: tuple[MemberFailure, ...] = ()


class ConsensusSummary(_Response):
    """conclave's account of a run, attached to every answer (and to the last chunk of a
    stream)."""

    transcript_id: str
    preset: str
    strategy: str = "flare"
    rounds: int
    stop_reason: str | None
    decided_by: DecidedBy | None = Field(
        default=None, description="Who wrote the final consensus (a fallback is named as such)."
    )
    agreement: Agreement | None = Field(
        default=None,
        description="Agreement score, answer clusters, the members backing the answer, confidence.",
    )
    fallbacks: tuple[FallbackSummary, ...] = Field(
        default=(),
        description="Every round whose consensus a fallback wrote (the fallback aggregator, a "
        "vote of the answers, or the previous round's consensus kept), and why.",
    )
    members: tuple[MemberSummary, ...]
    aggregator: str
    cost_usd: float | None = None
    duration_s: float
    grounding: GroundingSummary | None = Field(
        default=None, description="For a request with `documents`: its sources and citations."
    )


class FlareChatResponse(_Response):
    """Flare's `{"response": ...}`, with the run's summary beside it."""

    response: str
    transcript_id: str
    members: tuple[MemberSummary, ...]
    conclave: ConsensusSummary


class UsageBody(_Response):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class UrlCitation(_Response):
    """OpenAI's citation of a source: where the marker is in the content, and the source."""

    start_index: int
    end_index: int
    title: str
    url: str
    """The document as a file URI with the passage's span (`file:///...#char=start,end`)."""


class UrlCitationAnnotation(_Response):
    type: Literal["url_citation"] = "url_citation"
    url_citation: UrlCitation


class AssistantMessage(_Response):
    role: Literal["assistant"] = "assistant"
    content: str
    reasoning_content: str | None = None
    """The working the answer was read from, where the conversation asked for a form (the
    letter only, a number...) and the consensus wrote more: beside `content`, as
    OpenAI-compatible reasoning servers return it."""
    annotations: tuple[UrlCitationAnnotation, ...] = ()
    """A grounded answer's citations, one per marker, as OpenAI's clients read them."""


class GroundingSummary(_Response):
    """A grounded answer's sources: the passages given, the citations checked, the scores."""

    collection: str
    abstained: bool = Field(
        description="The documents do not hold the answer, and the answer says so."
    )
    citations: tuple[Citation, ...]
    passages: tuple[RetrievedPassage, ...] = Field(
        description="The passages the members were given, numbered as they cite them."
    )
    citation_recall: float | None = None
    citation_precision: float | None = None
    checks: tuple[str, ...] = ()


class Choice(_Response):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(_Response):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: tuple[Choice, ...]
    usage: UsageBody
    conclave: ConsensusSummary


class ModelCard(_Response):
    """One preset, as OpenAI lists a model."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "conclave"
    members: tuple[str, ...]
    aggregator: str
    iterations: int
    alias_of: str | None = None
    strategy: StrategyName = "flare"
    """The strategy this preset runs."""
    strategies: tuple[StrategyName, ...] = ()
    """The strategies `<id>:<strategy>` runs this preset's panel with."""


class ModelList(_Response):
    object: Literal["list"] = "list"
    data: tuple[ModelCard, ...]


class HealthStatus(_Response):
    """What `/health` tells anyone: the service is up."""

    status: Literal["ok"] = "ok"


class PresetBreakers(_Response):
    """A preset's circuit breakers, those of the models called so far: each member's, the
    aggregator's and the fallback aggregator's (`open`: resting after repeated failures,
    skipped until its next probe; while the aggregator rests a fallback writes the
    consensus)."""

    members: tuple[MemberHealthStatus, ...] = ()
    aggregator: MemberHealthStatus | None = None
    fallback_aggregator: MemberHealthStatus | None = None


class Health(HealthStatus):
    """What `/health` tells a trusted caller (a valid key, or no keys needed) besides."""

    presets: tuple[str, ...]
    runs_in_flight: int
    breakers: dict[str, PresetBreakers] = {}
    """Per preset, its breakers."""
