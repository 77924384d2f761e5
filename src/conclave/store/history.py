"""What the store keeps of a run and how runs are asked for.

A run is kept as its whole transcript (JSON) beside a summary of it (the columns the history
lists and filters on). Multi-turn conversations become threads: a run whose conversation is an
earlier run's conversation plus that run's answer plus a new user message continues the
earlier run's thread, whichever interface (CLI, API, page) sent it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from conclave.consensus.transcript import Transcript
from conclave.types import Frozen, Message

RunSource = Literal["http", "cli", "mcp"]
PROMPT_CHARS = 500
"""How much of the last user message a summary keeps (the transcript keeps it all)."""


class RunListing(Frozen):
    """One run as the history lists it."""

    id: str
    created_at: datetime
    source: RunSource
    preset: str
    strategy: str | None = None
    thread_id: str
    turn: int = 0
    prompt: str
    answer: str
    stop_reason: str | None = None
    ok: bool
    calls: int
    failed_calls: int
    rounds: int
    cost_usd: float | None = None
    duration_s: float


class RunQuery(Frozen):
    """Which runs to list: every filter is optional; newest first, `limit` from `offset`."""

    preset: str | None = None
    strategy: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    """Every word must appear in the run's conversation or answer (case-insensitive)."""
    thread_id: str | None = None
    limit: int = Field(default=20, ge=1, le=200)
    offset: int = Field(default=0, ge=0)

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self.text.lower().split()) if self.text else ()


class RunPage(Frozen):
    """A page of the history: `total` runs match, these are `offset`.. of them."""

    runs: tuple[RunListing, ...]
    total: int
    limit: int
    offset: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.runs) < self.total


@dataclass(frozen=True)
class StoredRun:
    """A run as written: its summary, its transcript JSON, its search text and thread keys."""

    summary: RunListing
    transcript_json: str
    search_text: str
    continues_key: str | None
    """The key of the conversation this run continues (None for a first turn)."""
    next_key: str
    """The key a following turn of this conversation will carry as its `continues_key`."""


def stored_run(
    transcript: Transcript,
    *,
    source: RunSource,
    preset: str,
    redact: Callable[[str], str] = str,
) -> StoredRun:
    """What the store writes for `transcript`; `redact` removes secrets from its JSON."""
    plain = transcript.to_json(indent=None)
    text = redact(plain)
    if text != plain:  # summarise what is kept, not the secret
        transcript = Transcript.model_validate_json(text)
    calls = [call for _, call in transcript.calls()]
    strategy = transcript.config.get("strategy")
    conversation = transcript.conversation
    summary = RunListing(
        id=transcript.id,
        created_at=transcript.created_at.astimezone(UTC),
        source=source,
        preset=preset,
        strategy=strategy if isinstance(strategy, str) else None,
        thread_id=transcript.id,
        prompt=_last_user_message(conversation)[:PROMPT_CHARS],
        answer=transcript.answer,
        stop_reason=transcript.stop_reason,
        ok=transcript.stop_reason not in {"quorum_lost", "aggregator_failed"},
        calls=len(calls),
        failed_calls=sum(1 for call in calls if not call.ok),
        rounds=len(transcript.rounds),
        cost_usd=transcript.usage.cost_usd,
        duration_s=transcript.duration_s,
    )
    searchable = [message.content for message in conversation if message.role != "system"]
    return StoredRun(
        summary=summary,
        transcript_json=text,
        search_text="\n".join([*searchable, transcript.answer]).lower(),
        continues_key=_continues_key(conversation),
        next_key=conversation_key(
            [*conversation, Message(role="assistant", content=transcript.answer)]
        ),
    )


def conversation_key(messages: Sequence[Message]) -> str:
    """A digest naming a conversation exactly (roles and contents, in order)."""
    pairs = [[message.role, message.content] for message in messages]
    return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest()


def continued_conversation(transcript: Transcript) -> list[Message]:
    """The conversation so far after `transcript`'s run: its messages and its answer."""
    return [*transcript.conversation, Message(role="assistant", content=transcript.answer)]


def _continues_key(conversation: Sequence[Message]) -> str | None:
    earlier = list(conversation[:-1])
    if not earlier or earlier[-1].role != "assistant":
        return None
    return conversation_key(earlier)


def _last_user_message(conversation: Sequence[Message]) -> str:
    for message in reversed(conversation):
        if message.role == "user":
            return message.content
    return ""
