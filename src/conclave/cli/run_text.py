"""A run's facts in words, the same in the live view, the progress lines and `conclave log`:
the agreement and confidence, who decided a round, a text cut to one line."""

from __future__ import annotations

from conclave.consensus.transcript import Agreement, DecidedBy

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
