"""Typed consensus configuration.

Flare AI Consensus's `input.json` loads unchanged. conclave's own config is a superset: a model
entry may say where the model lives (`openrouter:`, `local:`, or a `base_url` of any
OpenAI-compatible server with the name of the environment variable that holds its key), more
sampling options, and the run-wide `quorum`, `timeout_s` and `budget_usd`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from conclave.errors import ConfigError
from conclave.types import Frozen, Message, Role, SamplingOptions

ProviderKind = Literal["openrouter", "openai", "local"]

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
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot be read ({exc.strerror})") from None
    text = _decode_config_text(file, raw)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{file}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    return parse_config(data, source=str(file))


def _decode_config_text(file: Path, raw: bytes) -> str:
    """The file's text as UTF-8 (a leading byte-order mark allowed); a ConfigError that says
    what the file looks like otherwise (UTF-16, binary, another encoding)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(
            f"{file}: the file is UTF-16 text; conclave reads UTF-8 JSON: save it as UTF-8 "
            "(e.g. `iconv -f UTF-16 -t UTF-8`)"
        )
    if b"\x00" in raw[:4096]:
        raise ConfigError(
            f"{file}: the file is binary (it holds NUL bytes), not a JSON config: check the path"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{file}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the config as UTF-8 JSON"
        ) from None


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
