"""Typed consensus configuration.

Flare AI Consensus's `input.json` loads unchanged. conclave's own config is a superset: a model
entry may say where the model lives (`openrouter:`, `local:`, or a `base_url` of any
OpenAI-compatible server with the name of the environment variable that holds its key), more
sampling options, and the run-wide `quorum`, `timeout_s`, `budget_usd`, the wait for
stragglers (`grace_s`, `grace_factor`, `grace_floor_s`, `straggler_factor`) and the rest given
to failing members (`breaker_failures`, `breaker_cooldown_s`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from conclave.documents.options import DocumentsOptions
from conclave.errors import ConfigError
from conclave.text_files import read_user_text
from conclave.types import Frozen, Message, Role, SamplingOptions

ProviderKind = Literal["openrouter", "openai", "local"]
StrategyName = Literal["flare", "vote", "rank", "sample", "adaptive"]
"""How the panel reaches its consensus (see conclave.consensus.strategies)."""

DEFAULT_IMPROVEMENT_PROMPT = (
    "Please provide an answer to the initial query based on the aggregated responses provided."
)


class ModelSpec(Frozen):
    """One model: its id, where it lives, and how it samples.

    `id` is `openrouter:<slug>`, `local:<pack>`, or a bare OpenRouter slug as in Flare's files.
    With `base_url` the id is the model name that server expects.
    """

    id: str = Field(min_length=1)
    max_tokens: int = Field(default=512, gt=0)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = None
    stop: tuple[str, ...] = ()
    base_url: str | None = None
    api_key_env: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    label: str | None = None
    logprobs: bool = False
    """Ask the server for token log-probabilities, which make the confidence sharper
    (OpenAI-compatible servers that return them; the embedded models do not)."""
    weight: float = Field(default=1.0, gt=0)
    """How much this member's answer counts in a vote (its measured accuracy, for instance);
    `adaptive` and `sample` ask the heaviest member first."""

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @property
    def provider(self) -> ProviderKind:
        if self.base_url is not None:
            return "openai"
        if self.id.startswith("local:"):
            return "local"
        return "openrouter"

    @property
    def model_name(self) -> str:
        """The id without its location prefix: what the provider is asked for."""
        for prefix in ("local:", "openrouter:"):
            if self.base_url is None and self.id.startswith(prefix):
                return self.id.removeprefix(prefix)
        return self.id

    @property
    def display_name(self) -> str:
        return self.label or self.id

    @property
    def sampling(self) -> SamplingOptions:
        return SamplingOptions(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            stop=self.stop,
            logprobs=self.logprobs,
        )


class AggregatorSpec(Frozen):
    """Flare's aggregator entry: a model, the context before the candidates, the prompt after."""

    model: ModelSpec
    aggregator_context: tuple[Message, ...] = ()
    aggregator_prompt: tuple[Message, ...] = ()
    approach: str = "centralized-llm"


class ConsensusConfig(Frozen):
    """A whole consensus set-up, as in Flare's `input.json` plus conclave's additions."""

    models: tuple[ModelSpec, ...]
    aggregator: tuple[AggregatorSpec, ...]
    aggregated_prompt_type: Role = "system"
    improvement_prompt: str = DEFAULT_IMPROVEMENT_PROMPT
    iterations: int = Field(default=1, ge=0, le=20)
    initial_conversation: tuple[Message, ...] = ()
    quorum: int = Field(default=1, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    budget_usd: float | None = Field(default=None, gt=0)
    convergence_threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    """Stop early once two consecutive consensus answers are at least this similar (0..1)."""
    grace_s: float | None = Field(default=None, ge=0)
    """Seconds a round waits for the other members once the quorum answered; by default
    `grace_factor` times the slowest answer of the quorum (at least `grace_floor_s`), and for
    each member at least `straggler_factor` times its usual answer time."""
    grace_factor: float = Field(default=0.5, ge=0)
    grace_floor_s: float = Field(default=0.25, ge=0)
    straggler_factor: float = Field(default=2.0, ge=1)
    breaker_failures: int = Field(default=3, ge=1)
    """Failed calls in a row after which a member rests for `breaker_cooldown_s` seconds."""
    breaker_cooldown_s: float = Field(default=30.0, ge=0)
    strategy: StrategyName = "flare"
    """flare (an aggregator synthesises), vote, rank (peer review then a chairman), sample
    (several samples of the strongest member, voted), adaptive (members brought in one at a
    time until they agree)."""
    samples: int = Field(default=5, ge=2, le=32)
    """How many answers `sample` draws from the strongest member."""
    agreement_threshold: float = Field(default=0.75, gt=0.0, le=1.0)
    """`vote`, `sample`, `rank`, `adaptive`: stop once the consensus has this confidence (0..1);
    `adaptive` also needs two agreeing members, or one the backend says it is sure of."""
    sure_probability: float = Field(default=0.5, gt=0.0, le=1.0)
    """`adaptive`: the first answer ends the run when the model's mean token probability for it
    is at least this (embedded models report it; OpenAI-compatible servers with `logprobs`)."""
    show_answers: bool = False
    """Improvement rounds show members every answer of the previous round (anonymised), not
    only the consensus: Mixture-of-Agents layers, or a debate."""
    fallback_aggregator: ModelSpec | None = None
    """Writes the consensus when the aggregator fails; failing that, the answers are voted."""
    documents: DocumentsOptions | None = None
    """Ground every answer in a collection of the user's documents: passages given to the
    members, citations checked (see conclave.consensus.grounding)."""
    name: str = "default"

    @field_validator("models")
    @classmethod
    def _some_models(cls, value: tuple[ModelSpec, ...]) -> tuple[ModelSpec, ...]:
        if not value:
            raise ValueError("at least one model is needed")
        return value

    @field_validator("aggregator")
    @classmethod
    def _one_aggregator(cls, value: tuple[AggregatorSpec, ...]) -> tuple[AggregatorSpec, ...]:
        if len(value) != 1:
            raise ValueError("exactly one aggregator entry is needed, as in Flare's input.json")
        return value

    @model_validator(mode="after")
    def _quorum_fits_panel(self) -> ConsensusConfig:
        if self.quorum > len(self.models):
            raise ValueError(
                f"quorum is {self.quorum} but only {len(self.models)} models are configured; "
                f"set quorum to at most {len(self.models)}"
            )
        return self

    @property
    def aggregator_spec(self) -> AggregatorSpec:
        return self.aggregator[0]

    def with_changes(self, **changes: Any) -> ConsensusConfig:
        """A validated copy with some top-level fields replaced."""
        return parse_config({**self.model_dump(mode="json"), **changes}, source="overrides")


def parse_config(data: object, *, source: str = "config") -> ConsensusConfig:
    """Validate already-parsed JSON data; raise ConfigError naming every bad field."""
    try:
        return ConsensusConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_config(path: str | Path) -> ConsensusConfig:
    """Read and validate a config file; raise ConfigError with a precise message."""
    file = Path(path)
    text = read_user_text(file, ConfigError, expected="a JSON config")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{file}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    return parse_config(data, source=str(file))


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: JSON path, what was found, what is expected."""
    lines = [f"{source}: {exc.error_count()} problem(s)"]
    for error in exc.errors(include_url=False):
        path = json_path(error["loc"])
        found = _describe_found(error.get("input"), error["type"])
        lines.append(f"  {path}: {error['msg'].removeprefix('Value error, ')} ({found})")
    return "\n".join(lines)


def json_path(location: tuple[int | str, ...]) -> str:
    path = "$"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe_found(value: object, error_type: str) -> str:
    if error_type == "missing":
        return "found nothing"
    if error_type == "extra_forbidden":
        return "this field is not known; check its spelling"
    shown = json.dumps(value, default=str)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"found {shown}"
