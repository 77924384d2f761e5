"""Typed consensus configuration.

Flare AI Consensus's `input.json` loads unchanged. conclave's own config is a superset: a model
entry may say where the model lives (`openrouter:`, `local:`, or a `base_url` of any
OpenAI-compatible server with the name of the environment variable that holds its key), more
sampling options, and the run-wide `quorum`, `timeout_s`, `budget_usd`, the wait for
stragglers (`grace_s`, `grace_factor`, `grace_floor_s`, `straggler_factor`) and the rest given
to failing members (`breaker_failures`, `breaker_cooldown_s`).

The `strategy` names one of the strategies registered in `conclave.consensus.strategies`; its
options are one typed block (a `StrategyOptions` model of that strategy), given as
`strategy_options` or, as earlier configs wrote them, as the flat fields `samples`,
`agreement_threshold`, `sure_probability` and `show_answers`. The registry declares each
strategy's options model here (`declare_strategy_options`), so that a config naming an unknown
strategy or a wrong option fails when it is loaded, with the field and the choices named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    Field,
    JsonValue,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from conclave.errors import ConfigError
from conclave.text_files import read_user_text
from conclave.types import Frozen, Message, Role, SamplingOptions

ProviderKind = Literal["openrouter", "openai", "local"]
StrategyName = str
"""How the panel reaches its consensus: the name of a registered strategy (see
`conclave.consensus.strategies.strategy_names()`)."""

Samples = Annotated[int, Field(ge=2, le=32)]
"""How many answers a strategy draws from its strongest member."""
AgreementThreshold = Annotated[float, Field(gt=0.0, le=1.0)]
"""The confidence (0..1) at which a consensus is agreed and the run stops."""
SureProbability = Annotated[float, Field(gt=0.0, le=1.0)]
"""The mean token probability at which a lone answer is sure enough to end the run."""


class StrategyOptions(Frozen):
    """Base of each strategy's typed options block. A field named like one of the flat
    config fields (`samples`, `agreement_threshold`, `sure_probability`, `show_answers`) takes
    that field's value when the config gives it."""


OptionsT = TypeVar("OptionsT", bound=StrategyOptions)

_STRATEGY_OPTIONS: dict[str, type[StrategyOptions]] = {}
"""The options model of every registered strategy, by name (filled by the registry)."""


def declare_strategy_options(name: str, options_type: type[StrategyOptions]) -> None:
    """Make `name` a strategy a config may choose, with `options_type` as its options block.
    Called by `conclave.consensus.strategies.register_strategy`, not by users."""
    _STRATEGY_OPTIONS[name] = options_type


def strategy_options_type(name: str) -> type[StrategyOptions]:
    """The options model of the strategy `name`; ValueError naming the choices if unknown."""
    options_type = _STRATEGY_OPTIONS.get(name)
    if options_type is None:
        known = ", ".join(_STRATEGY_OPTIONS) or "none registered"
        raise ValueError(f"unknown strategy {name!r}; choose one of: {known}")
    return options_type


FLAT_STRATEGY_OPTIONS = ("samples", "agreement_threshold", "sure_probability", "show_answers")
"""Config fields that are strategy options written flat, as earlier configs did."""

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


RetrievalMode = Literal["bm25", "hybrid"]
SupportCheck = Literal["judge", "lexical"]


class DocumentsOptions(Frozen):
    """Ground every answer in a collection of the user's documents.

    `"documents": "manual"` is short for `{"collection": "manual"}`.
    """

    collection: str = Field(min_length=1)
    """The collection (see `conclave docs list`) the passages come from."""
    library: str | None = None
    """Where that collection is kept, when not in conclave's own place (see
    `conclave.documents.library`): a folder of SQLite collections, or a postgresql:// URL."""
    passages: int = Field(default=3, ge=1, le=20)
    """How many passages the members are given, numbered [1]..[passages]. Three held the
    answer of every answerable question of the grounded development set (BM25), and keep the
    embedded models' prompts short."""
    retrieval: RetrievalMode = "bm25"
    """bm25 (full-text rank), or hybrid (fused with MiniLM similarity; the collection must have
    been indexed with embeddings)."""
    support_check: SupportCheck = "judge"
    """judge: the strongest member says whether each cited passage supports its sentence (a
    yes/no reply, with its token probability where the backend gives one), the lexical check
    standing in when it cannot answer; lexical: word overlap only, no model call."""
    support_threshold: float = Field(default=0.35, gt=0.0, lt=1.0)
    """The least probability of the judge's "yes" for a sentence to count as supported (a
    "no" never does). On the grounded development set's claims the embedded 1.5B judge said yes
    to 96% of the right ones and to none of the wrong ones at any threshold up to 0.40 (its
    least sure right yes); 0.35 keeps that margin."""
    unsupported: Literal["drop", "mark"] = "drop"
    """What happens to a sentence no passage supports: dropped, or kept and marked."""
    general_knowledge: bool = False
    """When the documents do not hold the answer: false abstains ("The documents do not
    contain the answer."); true returns the panel's answer from general knowledge, marked."""

    @model_validator(mode="before")
    @classmethod
    def _name_alone(cls, data: object) -> object:
        return {"collection": data} if isinstance(data, str) else data


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
    time until they agree), or any other registered strategy."""
    samples: Samples | None = None
    """Flat spelling of the option `samples` (`sample`, `adaptive`)."""
    agreement_threshold: AgreementThreshold | None = None
    """Flat spelling of the option `agreement_threshold` (`vote`, `sample`, `rank`,
    `adaptive`)."""
    sure_probability: SureProbability | None = None
    """Flat spelling of the option `sure_probability` (`adaptive`)."""
    show_answers: bool | None = None
    """Flat spelling of the option `show_answers` (the strategies with improvement rounds)."""
    strategy_options: dict[str, JsonValue] = Field(default_factory=dict)
    """The chosen strategy's options block, checked against its options model (see
    `options`). The flat fields above are kept for any strategy: a strategy that has no such
    option leaves them to the next one a config switches to."""
    fallback_aggregator: ModelSpec | None = None
    """Writes the consensus when the aggregator fails; failing that, the answers are voted."""
    documents: DocumentsOptions | None = None
    """Ground every answer in a collection of the user's documents: passages given to the
    members, citations checked (see conclave.consensus.grounding)."""
    name: str = "default"
    _options: StrategyOptions = PrivateAttr()

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

    @field_validator("strategy")
    @classmethod
    def _strategy_is_registered(cls, value: str) -> str:
        strategy_options_type(value)
        return value

    @field_validator("strategy_options")
    @classmethod
    def _options_fit_strategy(
        cls, value: dict[str, JsonValue], info: ValidationInfo
    ) -> dict[str, JsonValue]:
        strategy = info.data.get("strategy")
        if isinstance(strategy, str):
            try:
                strategy_options_type(strategy).model_validate(value)
            except ValidationError as exc:
                raise ValueError(_options_problems(strategy, exc)) from None
        return value

    @model_validator(mode="after")
    def _quorum_fits_panel(self) -> ConsensusConfig:
        if self.quorum > len(self.models):
            raise ValueError(
                f"quorum is {self.quorum} but only {len(self.models)} models are configured; "
                f"set quorum to at most {len(self.models)}"
            )
        return self

    @model_validator(mode="after")
    def _options_given_once(self) -> ConsensusConfig:
        options_type = strategy_options_type(self.strategy)
        for name in FLAT_STRATEGY_OPTIONS:
            flat = getattr(self, name)
            if name in options_type.model_fields and flat is not None:
                block = self.strategy_options.get(name, flat)
                if block != flat:
                    raise ValueError(
                        f"{name} is given twice, as {flat!r} and as strategy_options.{name} "
                        f"{block!r}; keep one"
                    )
        self._options = self.options_as(options_type)
        return self

    @property
    def options(self) -> StrategyOptions:
        """The chosen strategy's options: its options model, from `strategy_options` and the
        flat fields it has, its defaults for the rest."""
        return self._options

    @property
    def aggregator_spec(self) -> AggregatorSpec:
        return self.aggregator[0]

    def with_changes(self, **changes: Any) -> ConsensusConfig:
        """A validated copy with some top-level fields replaced. A change of `strategy` keeps
        only the `strategy_options` the new strategy also has (unless `strategy_options` is
        changed too); the flat fields carry over whole."""
        data = {**self.model_dump(mode="json"), **changes}
        strategy = changes.get("strategy")
        if isinstance(strategy, str) and "strategy_options" not in changes:
            fields = _STRATEGY_OPTIONS.get(strategy, StrategyOptions).model_fields
            data["strategy_options"] = {
                name: value for name, value in self.strategy_options.items() if name in fields
            }
        return parse_config(data, source="overrides")

    def options_as(self, options_type: type[OptionsT]) -> OptionsT:
        """The options block read as `options_type`: `strategy_options` and the flat fields
        that model has, its defaults for the rest."""
        flat = {
            name: value
            for name in FLAT_STRATEGY_OPTIONS
            if name in options_type.model_fields and (value := getattr(self, name)) is not None
        }
        return options_type.model_validate({**flat, **self.strategy_options})


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


def _options_problems(strategy: str, exc: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'options'}: "
        f"{error['msg'].removeprefix('Value error, ')}"
        for error in exc.errors(include_url=False)
    )
    return f"options of strategy {strategy!r}: {problems}"


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
