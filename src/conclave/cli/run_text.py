"""A run's facts in words, the same in the live view, the progress lines and `conclave log`:
the agreement and confidence, who decided a round, what a step did, a text cut to one line."""

from __future__ import annotations

from conclave.consensus.events import AnswerChecked, ConversationPrepared, StepProgress
from conclave.consensus.transcript import Agreement, DecidedBy, StepRecord

PREVIEW_CHARS = 70

_DECIDERS: dict[DecidedBy, str] = {
    "aggregator": "aggregator",
    "vote": "vote",
    "rank": "rank",
    "fallback_aggregator": "fallback aggregator (the aggregator failed)",
    "fallback_vote": "fallback vote (the aggregator failed)",
    "previous_round": "previous round's consensus, kept (this round's combiner failed)",
}


def decided_by_text(decided_by: DecidedBy) -> str:
    """Who wrote a round's consensus, a fallback said as one with why it stepped in."""
    return _DECIDERS[decided_by]


def agreement_line(agreement: Agreement) -> str:
    """Agreement, who backs the answer, and the confidence, in one line."""
    backers = ", ".join(agreement.supporters) or "no member"
    line = (
        f"agreement {agreement.score:.0%} · backed by {backers} · "
        f"confidence {agreement.confidence:.0%}"
    )
    if len(agreement.clusters) > 1:
        shown = " / ".join(
            f"{one_line(c.answer)[:24]} x{len(c.members)}" for c in agreement.clusters[:4]
        )
        line += f" · answers: {shown}"
    return line


def one_line(text: str, width: int = PREVIEW_CHARS) -> str:
    """`text` with its whitespace folded, cut to `width` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def step_line(event: StepProgress | ConversationPrepared | AnswerChecked) -> str:
    """One line for a step's progress, a conversation a step prepared, or a check's verdict."""
    if isinstance(event, ConversationPrepared):
        return f"before round 1: {step_summary(event.record)}"
    if isinstance(event, AnswerChecked):
        verdict = "revised the answer" if event.revised else "kept the answer"
        return f"round {event.round + 1}: {event.step} {verdict}"
    where = "before round 1" if event.round is None else f"round {event.round + 1}"
    name = f" {event.name}" if event.name else ""
    status = "" if event.status == "note" else f" {event.status}"
    message = f": {event.message}" if event.message else ""
    return f"{where}: {event.step}{name}{status}{message}"


def step_summary(record: StepRecord) -> str:
    """What a step did: its name, its report in words (every report has `text`), its calls and
    how many failed."""
    failed = sum(not call.ok for call in record.calls)
    calls = f"{len(record.calls)} call(s)" + (f", {failed} failed" if failed else "")
    report = f": {record.report.text}" if record.report is not None else ""
    return f"{record.step} ({calls}){report}"
