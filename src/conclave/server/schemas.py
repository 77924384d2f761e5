"""The service's request and response bodies, as typed models.

Requests accept and ignore fields they do not use (clients such as LangChain send sampling
options, `user`, `n=1`, ...): the preset named by `model` decides how the models sample.
Responses are OpenAI's shapes with conclave's additions in extra fields old clients ignore.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from conclave.config import StrategyName
from conclave.consensus.health import MemberHealthStatus
from conclave.consensus.transcript import Agreement, DecidedBy
from conclave.types import Message, Role

# --- requests ---------------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TextPart(_Request):
    """A text part of a message's content (images and audio are not supported)."""

    type: Literal["text"]
    text: str


class ChatMessage(_Request):
    """One message as OpenAI's API takes it. `developer` is read as `system`."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

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

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    json_schema: dict[str, object] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class JsonSchemaFormat(_Request):
    """The answer must be JSON satisfying `json_schema.schema`."""

    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[
    TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")
]


class ChatCompletionRequest(_Request):
    """`POST /v1/chat/completions`: `model` names a consensus preset.

    `tools`, `tool_choice`, `functions` and `function_call` are read only to refuse them with
    a clear 400 (a consensus answers in text; it does not call tools)."""

    model: str = Field(min_length=1, examples=["default"])
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=1)] | None = Field(
        default=None, description="Only 1 is supported: the consensus is one answer."
    )
    response_format: ResponseFormat | None = Field(
        default=None,
        description="`json_object` or `json_schema`: the final answer is made to conform "
        "(checked, and rewritten by the aggregator once if it does not); not with `stream`.",
    )
    tools: list[dict[str, object]] | None = Field(
        default=None, description="Not supported: a non-empty list is refused with a 400."
    )
    tool_choice: str | dict[str, object] | None = Field(
        default=None, description="Only `none` (or leaving it out) is accepted."
    )
    functions: list[dict[str, object]] | None = Field(
        default=None, description="Not supported (the legacy form of `tools`)."
    )
    function_call: str | dict[str, object] | None = Field(
        default=None, description="Only `none` (or leaving it out) is accepted."
    )


class ConsensusStreamRequest(_Request):
    """`POST /v1/consensus/stream`: the same conversation, answered with every event."""

    model: str = Field(default="default", min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)


class FlareChatRequest(_Request):
    """Flare AI Consensus's chat body. `system_message` may be left out here."""

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


class RunSummary(_Response):
    """conclave's account of a run, attached to every answer."""

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
    members: tuple[MemberSummary, ...]
    aggregator: str
    cost_usd: float | None = None
    duration_s: float


class FlareChatResponse(_Response):
    """Flare's `{"response": ...}`, with the run's summary beside it."""

    response: str
    transcript_id: str
    members: tuple[MemberSummary, ...]
    conclave: RunSummary


class UsageBody(_Response):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(_Response):
    role: Literal["assistant"] = "assistant"
    content: str
    reasoning_content: str | None = None
    """The working the answer was read from, where the conversation asked for a form (the
    letter only, a number...) and the consensus wrote more: beside `content`, as
    OpenAI-compatible reasoning servers return it."""


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
    conclave: RunSummary


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


class Health(_Response):
    status: Literal["ok"] = "ok"
    presets: tuple[str, ...]
    runs_in_flight: int
    members: dict[str, tuple[MemberHealthStatus, ...]] = {}
    """Per preset, the breaker of every member called so far (`open`: resting after repeated
    failures, skipped until its next probe)."""
