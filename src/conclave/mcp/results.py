"""What the MCP tools return: typed results, published to clients as the tools' output schemas
and sent as structured content (with the same JSON as text for clients that read only text)."""

from __future__ import annotations

from pydantic import Field

from conclave.consensus.transcript import DecidedBy, StopReason, Transcript
from conclave.types import Frozen, Usage


class AskResult(Frozen):
    """A consensus answer and how it was reached."""

    answer: str = Field(description="The panel's consensus answer.")
    run_id: str = Field(description="The run's id: `get_run` returns its whole transcript.")
    preset: str = Field(description="The preset (or config file) the panel came from.")
    strategy: str = Field(description="How the panel agreed (flare, vote, rank, ...).")
    agreement: float | None = Field(
        description="How far the members agreed: the weighted share of the largest group of "
        "matching answers, 0..1 (none when no answers could be compared)."
    )
    confidence: float | None = Field(
        description="How far the members back the answer, 0..1, averaged with their token "
        "probabilities where the models report them."
    )
    stop_reason: StopReason | None = Field(description="Why the rounds stopped.")
    decided_by: DecidedBy | None = Field(
        description="Who wrote the answer: the aggregator, a vote, or a fallback when the "
        "combiner failed."
    )
    rounds: int = Field(description="Rounds run (the first answers included).")
    calls: int = Field(description="Model calls made.")
    failed_calls: int = Field(description="Model calls that failed (the run went on without).")
    usage: Usage = Field(description="Tokens used by every call, and their cost where known.")
    duration_s: float = Field(description="Seconds the run took.")
    kept: bool = Field(description="Whether the run is in the run store for `get_run`.")


def ask_result(transcript: Transcript, *, preset: str, strategy: str, kept: bool) -> AskResult:
    """The result of `ask` from a finished run's transcript."""
    calls = [call for _, call in transcript.calls()]
    last_round = transcript.rounds[-1] if transcript.rounds else None
    agreement = transcript.agreement
    return AskResult(
        answer=transcript.answer,
        run_id=transcript.id,
        preset=preset,
        strategy=strategy,
        agreement=agreement.score if agreement else None,
        confidence=agreement.confidence if agreement else None,
        stop_reason=transcript.stop_reason,
        decided_by=last_round.decided_by if last_round else None,
        rounds=len(transcript.rounds),
        calls=len(calls),
        failed_calls=sum(1 for call in calls if not call.ok),
        usage=transcript.usage,
        duration_s=round(transcript.duration_s, 3),
        kept=kept,
    )


class PresetInfo(Frozen):
    """A consensus set-up the server offers."""

    name: str
    default: bool = Field(description="Used when `ask` names no preset.")
    strategy: str
    members: tuple[str, ...] = Field(description="The panel's models, in order.")
    aggregator: str = Field(description="The model that combines the answers.")
    iterations: int = Field(description="Improvement rounds after the first answers.")


class PresetList(Frozen):
    presets: tuple[PresetInfo, ...]
    strategies: tuple[str, ...] = Field(
        description="Every strategy `ask` accepts to run a preset's panel another way."
    )


class PanelModel(Frozen):
    """A model one or more presets use."""

    id: str = Field(description="The model as configs name it, e.g. `local:qwen2.5-1.5b`.")
    provider: str = Field(
        description="Where it runs: openrouter, openai (any OpenAI-compatible URL) or local."
    )
    presets: tuple[str, ...] = Field(description="The presets whose panel or aggregator use it.")


class EmbeddedModel(Frozen):
    """An embedded model pack: runs on this machine with no key and no network."""

    id: str = Field(description="Its name in a config, e.g. `local:qwen2.5-1.5b`.")
    title: str
    description: str
    size_bytes: int
    installed: bool = Field(description="Its files are on this machine.")


class ModelList(Frozen):
    panel_models: tuple[PanelModel, ...]
    embedded: tuple[EmbeddedModel, ...]
