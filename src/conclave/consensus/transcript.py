"""The record of a consensus run: every call made, and the answer.

It is built from the engine's events, returned to the caller, printed by `--json`, stored and
hashed into receipts. Nothing of a run is left out of it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Literal

from pydantic import Field

from conclave.types import Frozen, Message, Usage

CallRole = Literal["member", "aggregator", "reviewer"]
StopReason = Literal[
    "iterations",
    "converged",
    "agreed",
    "settled",
    "free_form",
    "budget",
    "quorum_lost",
    "aggregator_failed",
]
DecidedBy = Literal[
    "aggregator", "vote", "rank", "fallback_aggregator", "fallback_vote", "previous_round"
]
"""Who wrote a round's consensus: the aggregator, a vote of the answers, the chairman of a
ranking, or (when the combiner failed) a fallback: the fallback aggregator, the vote of the
answers, or the previous round's consensus kept as it was."""


_REUSED_ANSWER: frozenset[DecidedBy] = frozenset({"vote", "fallback_vote", "previous_round"})
"""Ways of deciding that reuse an answer already counted (a member's, an earlier round's)."""


class CallError(Frozen):
    """Why a call failed: a stable `type` (timeout, rate_limited, http_error, ...) and a message."""

    type: str
    message: str
    status_code: int | None = None


class CallRecord(Frozen):
    """One model call of a run: what was sent and what came back (or why nothing did).

    A call that was sent the run's conversation does not repeat it: `conversation_messages`
    says how many of the transcript's `conversation` messages (from the first) went before
    `messages`. `Transcript.sent(call)` gives the whole list."""

    model: str
    role: CallRole = "member"
    conversation_messages: int = Field(default=0, ge=0)
    messages: tuple[Message, ...] = ()
    text: str = ""
    error: CallError | None = None
    finish_reason: str | None = None
    truncated: bool = False
    usage: Usage = Usage()
    latency_s: float = 0.0
    token_probability: float | None = None
    """The geometric mean of the answer's token probabilities, when the backend reports them."""
    choice_probabilities: dict[str, float] | None = None
    """Each option letter's probability as the answer's first token, when asked for (a
    multiple-choice answer read from the options' probabilities)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def referencing(self, conversation: Sequence[Message]) -> CallRecord:
        """This record with the conversation it was sent replaced by a reference to it."""
        count = len(conversation)
        if self.conversation_messages or not count or len(self.messages) < count:
            return self
        if tuple(self.messages[:count]) != tuple(conversation):
            return self
        return self.model_copy(
            update={"conversation_messages": count, "messages": self.messages[count:]}
        )


class AnswerCluster(Frozen):
    """Members whose answers say the same thing."""

    answer: str
    """The shared answer: its key ("B", "42", "canberra"), or for free-form text the start of
    the most central answer of the cluster."""
    members: tuple[str, ...]
    weight: float
    share: float
    """The cluster's part of the total member weight, 0..1."""


class Agreement(Frozen):
    """How far the members agreed, and how far they back the consensus.

    `score` is the weighted share of the largest cluster; `support` the weighted share of the
    members whose answer matches the consensus (`supporters`); `confidence` is `support`,
    averaged with the supporters' mean token probability where the backend reports one.
    """

    kind: Literal["letter", "number", "text", "parts", "free"]
    score: float
    clusters: tuple[AnswerCluster, ...]
    unparsed: tuple[str, ...] = ()
    """Members whose answer could not be read (counted in the total weight, in no cluster)."""
    answer: str | None = None
    """The consensus's own answer key, where one could be read."""
    supporters: tuple[str, ...] = ()
    support: float = 0.0
    token_probability: float | None = None
    confidence: float = 0.0


class RoundRecord(Frozen):
    """One round: the members' responses in panel order, and the aggregate of those."""

    index: int
    responses: tuple[CallRecord, ...]
    aggregate: CallRecord | None = None
    """The call whose text is the round's consensus (for a vote, the winning member answer)."""
    decided_by: DecidedBy = "aggregator"
    other_calls: tuple[CallRecord, ...] = ()
    """Calls besides the members' and the deciding one: peer reviews, failed aggregators."""
    agreement: Agreement | None = None

    @property
    def answered(self) -> tuple[CallRecord, ...]:
        return tuple(response for response in self.responses if response.ok)

    @property
    def calls(self) -> tuple[CallRecord, ...]:
        """Every model call this round made, each once: the members', the reviews and failed
        attempts, and the deciding call unless it reuses an answer counted elsewhere."""
        calls = (*self.responses, *self.other_calls)
        if self.aggregate is None or self.decided_by in _REUSED_ANSWER:
            return calls
        return (*calls, self.aggregate)

    @property
    def usage(self) -> Usage:
        return sum((call.usage for call in self.calls), Usage())


class Transcript(Frozen):
    """A whole run: its set-up, the conversation, every round, the answer and the totals."""

    id: str
    created_at: datetime
    config: dict[str, object] = Field(default_factory=dict)
    conversation: tuple[Message, ...]
    rounds: tuple[RoundRecord, ...] = ()
    answer: str = ""
    agreement: Agreement | None = None
    """The last round's agreement: how far the members back `answer`."""
    stop_reason: StopReason | None = None
    usage: Usage = Usage()
    duration_s: float = 0.0

    def calls(self) -> Iterator[tuple[int, CallRecord]]:
        """Every call of the run with its round's index, in order."""
        for record in self.rounds:
            for call in record.calls:
                yield record.index, call

    def sent(self, call: CallRecord) -> tuple[Message, ...]:
        """Every message `call` (a record of this run) was sent."""
        return (*self.conversation[: call.conversation_messages], *call.messages)

    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)
