"""What a finished run becomes in each API's shape: OpenAI's chat completion, Flare's
`{"response": ...}`, and the run summary both carry."""

from __future__ import annotations

from conclave.consensus.panel import panel_member_of
from conclave.consensus.transcript import Transcript
from conclave.server.api_errors import failures_of
from conclave.server.catalog import Preset
from conclave.server.schemas import (
    AssistantMessage,
    ChatCompletion,
    Choice,
    FlareChatResponse,
    MemberSummary,
    RunSummary,
    UsageBody,
)
from conclave.types import Usage


def run_summary(transcript: Transcript, preset: Preset) -> RunSummary:
    """Per member: answers, failures and tokens over every round; and the run's totals."""
    failures = failures_of(transcript)
    members = []
    labels = set(preset.members)
    for label in preset.members:
        calls = [
            call
            for _, call in transcript.calls()
            if call.role == "member" and panel_member_of(call.model, labels) == label
        ]
        members.append(
            MemberSummary(
                model=label,
                answered=sum(1 for call in calls if call.ok),
                failed=sum(1 for call in calls if not call.ok),
                failures=tuple(
                    failure
                    for failure in failures
                    if panel_member_of(failure.model, labels) == label
                ),
                prompt_tokens=sum(call.usage.prompt_tokens for call in calls),
                completion_tokens=sum(call.usage.completion_tokens for call in calls),
            )
        )
    return RunSummary(
        transcript_id=transcript.id,
        preset=preset.name,
        strategy=preset.config.strategy,
        rounds=len(transcript.rounds),
        stop_reason=transcript.stop_reason,
        decided_by=transcript.rounds[-1].decided_by if transcript.rounds else None,
        agreement=transcript.agreement,
        members=tuple(members),
        aggregator=preset.aggregator,
        cost_usd=transcript.usage.cost_usd,
        duration_s=round(transcript.duration_s, 4),
    )


def finish_reason(transcript: Transcript) -> str:
    """The final aggregate's reason to stop, in OpenAI's words (`stop` or `length`)."""
    aggregate = transcript.rounds[-1].aggregate if transcript.rounds else None
    if aggregate is not None and aggregate.truncated:
        return "length"
    return "stop"


def usage_body(usage: Usage) -> UsageBody:
    """Every token of every call of the run: what the consensus cost, as one model's usage."""
    return UsageBody(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def chat_completion(transcript: Transcript, preset: Preset) -> ChatCompletion:
    return ChatCompletion(
        id=completion_id(transcript.id),
        created=int(transcript.created_at.timestamp()),
        model=preset.name,
        choices=(
            Choice(
                message=AssistantMessage(
                    content=transcript.answer, reasoning_content=transcript.reasoning or None
                ),
                finish_reason=finish_reason(transcript),
            ),
        ),
        usage=usage_body(transcript.usage),
        conclave=run_summary(transcript, preset),
    )


def flare_response(transcript: Transcript, preset: Preset) -> FlareChatResponse:
    summary = run_summary(transcript, preset)
    return FlareChatResponse(
        response=transcript.answer,
        transcript_id=transcript.id,
        members=summary.members,
        conclave=summary,
    )


def completion_id(run_id: str) -> str:
    return f"chatcmpl-{run_id}"
