"""What a finished run becomes in each API's shape: OpenAI's chat completion, Flare's
`{"response": ...}`, and the `ConsensusSummary` both carry."""

from __future__ import annotations

from conclave.consensus.panel import panel_member_of
from conclave.consensus.transcript import CallRecord, Transcript
from conclave.server.api_errors import failure_of
from conclave.server.catalog import Preset
from conclave.server.schemas import (
    FALLBACKS,
    AssistantMessage,
    ChatCompletion,
    Choice,
    ConsensusSummary,
    FallbackSummary,
    FlareChatResponse,
    GroundingSummary,
    MemberFailure,
    MemberSummary,
    UrlCitation,
    UrlCitationAnnotation,
    UsageBody,
)
from conclave.types import Usage


def consensus_summary(transcript: Transcript, preset: Preset) -> ConsensusSummary:
    """Per member: answers, failures and tokens over every round; and the run's totals."""
    labels = set(preset.members)
    calls: dict[str, list[CallRecord]] = {label: [] for label in preset.members}
    failures: dict[str, list[MemberFailure]] = {label: [] for label in preset.members}
    for index, call in transcript.calls():
        member = panel_member_of(call.model, labels)
        if member is None:
            continue
        if call.role == "member":
            calls[member].append(call)
        if call.error is not None:
            failures[member].append(failure_of(index, call))
    members = tuple(
        MemberSummary(
            model=label,
            answered=sum(1 for call in calls[label] if call.ok),
            failed=sum(1 for call in calls[label] if not call.ok),
            failures=tuple(failures[label]),
            prompt_tokens=sum(call.usage.prompt_tokens for call in calls[label]),
            completion_tokens=sum(call.usage.completion_tokens for call in calls[label]),
        )
        for label in preset.members
    )
    return ConsensusSummary(
        transcript_id=transcript.id,
        preset=preset.name,
        strategy=preset.config.strategy,
        rounds=len(transcript.rounds),
        stop_reason=transcript.stop_reason,
        decided_by=transcript.rounds[-1].decided_by if transcript.rounds else None,
        agreement=transcript.agreement,
        fallbacks=fallbacks_of(transcript),
        members=members,
        aggregator=preset.aggregator,
        cost_usd=transcript.usage.cost_usd,
        duration_s=round(transcript.duration_s, 4),
        grounding=grounding_summary(transcript),
    )


def grounding_summary(transcript: Transcript) -> GroundingSummary | None:
    """A grounded run's passages, citations and scores; None for a run without documents."""
    retrieval = transcript.retrieval
    if retrieval is None:
        return None
    report = transcript.citation_report
    scores = report.returned if report is not None else None
    return GroundingSummary(
        collection=retrieval.collection,
        abstained=transcript.abstained,
        citations=transcript.citations,
        passages=retrieval.passages,
        citation_recall=scores.recall if scores is not None else None,
        citation_precision=scores.precision if scores is not None else None,
        checks=report.checks if report is not None else (),
    )


def citation_annotations(transcript: Transcript) -> tuple[UrlCitationAnnotation, ...]:
    """One url_citation per citation marker of the answer."""
    return tuple(
        UrlCitationAnnotation(
            url_citation=UrlCitation(
                start_index=citation.answer_start,
                end_index=citation.answer_end,
                title=citation.title,
                url=citation.uri,
            )
        )
        for citation in transcript.citations
    )


def fallbacks_of(transcript: Transcript) -> tuple[FallbackSummary, ...]:
    """Every round a fallback decided, with the combiner calls that did not."""
    return tuple(
        FallbackSummary(
            round=record.index,
            decided_by=record.decided_by,
            failed=tuple(
                failure_of(record.index, call)
                for call in record.other_calls
                if call.role == "aggregator" and call.error is not None
            ),
        )
        for record in transcript.rounds
        if record.decided_by in FALLBACKS
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
                    content=transcript.answer,
                    reasoning_content=transcript.reasoning or None,
                    annotations=citation_annotations(transcript),
                ),
                finish_reason=finish_reason(transcript),
            ),
        ),
        usage=usage_body(transcript.usage),
        conclave=consensus_summary(transcript, preset),
    )


def flare_response(transcript: Transcript, preset: Preset) -> FlareChatResponse:
    summary = consensus_summary(transcript, preset)
    return FlareChatResponse(
        response=transcript.answer,
        transcript_id=transcript.id,
        members=summary.members,
        conclave=summary,
    )


def completion_id(run_id: str) -> str:
    return f"chatcmpl-{run_id}"
