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

CallRole = Literal["member", "aggregator"]
StopReason = Literal["iterations", "converged", "budget", "quorum_lost", "aggregator_failed"]


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


class RoundRecord(Frozen):
    """One round: the members' responses in panel order, and the aggregate of those."""

    index: int
    responses: tuple[CallRecord, ...]
    aggregate: CallRecord | None = None

    @property
    def calls(self) -> tuple[CallRecord, ...]:
        """Every call of the round: the members' in panel order, then the aggregate's."""
        return (*self.responses, self.aggregate) if self.aggregate else self.responses

    @property
    def answered(self) -> tuple[CallRecord, ...]:
        return tuple(response for response in self.responses if response.ok)

    @property
    def usage(self) -> Usage:
        total = sum((response.usage for response in self.responses), Usage())
        return total + self.aggregate.usage if self.aggregate else total


class Transcript(Frozen):
    """A whole run: its set-up, the conversation, every round, the answer and the totals."""

    id: str
    created_at: datetime
    config: dict[str, object] = Field(default_factory=dict)
    conversation: tuple[Message, ...]
    rounds: tuple[RoundRecord, ...] = ()
    answer: str = ""
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
