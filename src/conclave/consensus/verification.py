"""A cheap check of a candidate answer by the strongest member, before paying for reasoning.

AutoMix (arXiv 2310.12963) lets a small model verify its own answer with a few-shot prompt and
escalates only what fails the check. Here the strongest member is shown its candidate answer and
asked whether it is correct; the answer is one token, and the embedded backend reports the
probabilities of "Yes" and "No" there, so the check costs the new prompt tokens and one token
(the conversation before it is already in the model's context). A candidate whose "Yes" share
reaches the threshold ends the run; one below it goes on to reasoning.

The check is a round of its own, recorded like every call; its answer is a judgement, never a
ballot, so the vote leaves it out (`WithoutChecks`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from conclave.consensus.answers import letter_shares
from conclave.consensus.panel import Member
from conclave.consensus.steps import CandidatePool
from conclave.consensus.transcript import CallRecord, RoundRecord, StopReason
from conclave.types import Completion, Message, StreamItem, TextDelta, Usage

CHECK_PROMPT = "Is the answer above correct? Reply with Yes or No only."
CHECK_LABEL = " (check)"
"""Appended to the label of a member checking an answer: its records are no ballots."""
VERDICTS = ("Yes", "No")


def check_messages(conversation: Sequence[Message], candidate: str) -> tuple[Message, ...]:
    """The conversation, the candidate answer as the assistant's, and the check question."""
    return (
        *conversation,
        Message(role="assistant", content=candidate),
        Message(role="user", content=CHECK_PROMPT),
    )


def is_check(record: CallRecord) -> bool:
    return record.model.endswith(CHECK_LABEL)


def yes_share(record: CallRecord) -> float | None:
    """How sure a check is that the answer is correct: the "Yes" share of its first token's
    "Yes" and "No" probabilities, else 1 or 0 from its text, else None."""
    shares = letter_shares(record.choice_probabilities)
    if shares:
        return shares.get("Yes", 0.0)
    said = record.text.strip().lower()
    if said.startswith("yes"):
        return 1.0
    if said.startswith("no"):
        return 0.0
    return None


@dataclass(frozen=True)
class Checker(Member):
    """A member asked whether an answer is correct: one token, at temperature 0, with the
    probabilities of "Yes" and "No" asked for."""

    async def complete(self, messages: Sequence[Message]) -> Completion:
        options = self.spec.sampling.model_copy(
            update={"max_tokens": 1, "temperature": 0.0, "first_token_choices": VERDICTS}
        )
        started = time.perf_counter()
        completion = await self.provider.complete(self.spec.model_name, messages, options)
        return completion.model_copy(update={"latency_s": time.perf_counter() - started})

    async def stream(self, messages: Sequence[Message]) -> AsyncIterator[StreamItem]:
        completion = await self.complete(messages)
        yield TextDelta(text=completion.text)
        yield completion


def checker(member: Member) -> Checker:
    """`member` checking answers (see Checker), labelled "<member> (check)"."""
    return Checker(member.spec, member.provider, f"{member.label}{CHECK_LABEL}")


class WithoutChecks:
    """The candidates of an inner pool, without the checks' records (judgements, not answers)."""

    def __init__(self, inner: CandidatePool) -> None:
        self._inner = inner

    def candidates(
        self, history: Sequence[RoundRecord], answered: Sequence[CallRecord]
    ) -> tuple[CallRecord, ...]:
        return tuple(r for r in self._inner.candidates(history, answered) if not is_check(r))


class CheckPassed:
    """Stop after a round whose check says the answer is correct: a "Yes" share of at least
    `threshold`."""

    def __init__(self, threshold: float) -> None:
        self._threshold = threshold

    def stop_reason(self, rounds: Sequence[RoundRecord], usage: Usage) -> StopReason | None:
        checks = [r for r in rounds[-1].answered if is_check(r)] if rounds else []
        shares = [share for r in checks if (share := yes_share(r)) is not None]
        return "agreed" if shares and min(shares) >= self._threshold else None
