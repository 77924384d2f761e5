"""The values that flow through conclave: messages, sampling options, completions, usage.

All are frozen pydantic models, so they are hashable, safe to share between tasks, and have
one JSON form.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

Role = Literal["system", "user", "assistant"]


class Frozen(BaseModel):
    """Base of conclave's immutable value types."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Message(Frozen):
    """One chat message. OpenAI's `developer` role (its newer name for `system`) is read as
    `system`, wherever a message comes from: a batch row, a kept run, the HTTP API."""

    role: Role
    content: str

    @field_validator("role", mode="before")
    @classmethod
    def _developer_is_system(cls, role: object) -> object:
        return "system" if role == "developer" else role


class SamplingParams(TypedDict, total=False):
    """Sampling options as request parameters, named as in OpenAI's chat API."""

    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: list[str]
    logprobs: bool
    presence_penalty: float
    frequency_penalty: float


class JsonSchema(Frozen):
    """A JSON Schema an answer must satisfy. Kept as JSON text, so that options holding it stay
    hashable and every call sends the very same schema; its key order is kept, since grammar
    decoding writes an object's properties in the order the schema lists them."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """What OpenAI's `response_format` calls the schema."""
    text: str

    @field_validator("text")
    @classmethod
    def _an_object(cls, value: str) -> str:
        if not isinstance(json.loads(value), dict):
            raise ValueError("a JSON Schema is a JSON object")
        return value

    @classmethod
    def of(cls, name: str, schema: Mapping[str, JsonValue]) -> JsonSchema:
        return cls(name=name, text=json.dumps(schema, separators=(",", ":")))

    def value(self) -> dict[str, JsonValue]:
        schema: dict[str, JsonValue] = json.loads(self.text)
        return schema


class SamplingOptions(Frozen):
    """How a model should sample. `None` leaves the provider's default in place."""

    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    """Ask for the tokens' log-probabilities (OpenAI-compatible servers that offer them)."""
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    json_schema: JsonSchema | None = None
    """Constrain the answer to JSON satisfying this schema: grammar decoding on the embedded
    models, `response_format` on OpenAI-compatible servers that accept it. Not in `params()`:
    each provider sends it in its own form."""
    first_token_choices: tuple[str, ...] = ()
    """Strings (option letters, "Yes" and "No") whose probability as the answer's first token
    the backend reports in `Completion.choice_probabilities` (the embedded models do): a
    multiple-choice answer read from one call. Not a request parameter."""

    def params(self) -> SamplingParams:
        """The options that are set, as OpenAI-style request parameters (llama.cpp's
        `create_chat_completion` takes the same names)."""
        params: SamplingParams = {}
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.top_p is not None:
            params["top_p"] = self.top_p
        if self.seed is not None:
            params["seed"] = self.seed
        if self.stop:
            params["stop"] = list(self.stop)
        if self.logprobs:
            params["logprobs"] = True
        if self.presence_penalty is not None:
            params["presence_penalty"] = self.presence_penalty
        if self.frequency_penalty is not None:
            params["frequency_penalty"] = self.frequency_penalty
        return params


class Usage(Frozen):
    """Tokens used by one or more calls, and their cost in US dollars when the provider says."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def total(cls, usages: Iterable[Usage], start: Usage | None = None) -> Usage:
        """The sum of `usages` (and `start`), built once: `sum()` would build a Usage per
        addition, and a run sums its calls' usage every round."""
        prompt_tokens = completion_tokens = 0
        cost: float | None = None
        for usage in usages if start is None else (start, *usages):
            prompt_tokens += usage.prompt_tokens
            completion_tokens += usage.completion_tokens
            if usage.cost_usd is not None:
                cost = (cost or 0.0) + usage.cost_usd
        return cls(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost)

    def __add__(self, other: Usage) -> Usage:
        if self.cost_usd is None and other.cost_usd is None:
            cost = None
        else:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=cost,
        )


class Completion(Frozen):
    """A model's finished answer to one call."""

    kind: Literal["completion"] = "completion"
    model: str
    text: str
    finish_reason: str | None = None
    usage: Usage = Usage()
    latency_s: float = 0.0
    token_probability: float | None = None
    """The geometric mean of the answer's token probabilities, when the backend reports them."""
    choice_probabilities: dict[str, float] | None = None
    """For each of the options' `first_token_choices`, its probability as the answer's first
    token (with or without a leading space), when the backend reports them."""

    @property
    def truncated(self) -> bool:
        """True when the model stopped because it hit its token limit."""
        return self.finish_reason == "length"


class TextDelta(Frozen):
    """A piece of text from a streaming call."""

    kind: Literal["delta"] = "delta"
    text: str


StreamItem = TextDelta | Completion
"""A stream yields TextDelta items and ends with exactly one Completion."""


class ModelInfo(Frozen):
    """A model a provider offers, with its price per token in US dollars where known."""

    id: str
    name: str = ""
    provider: str
    context_length: int | None = None
    prompt_price_usd: float | None = None
    completion_price_usd: float | None = None
    installed: bool = True
    description: str = ""

    @property
    def free(self) -> bool:
        return self.prompt_price_usd == 0.0 and self.completion_price_usd == 0.0
