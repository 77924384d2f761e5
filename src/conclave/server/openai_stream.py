"""A run as OpenAI's `chat.completion.chunk` stream.

Which text is streamed: only the final consensus, never an earlier round's. The last round a
run can have (`RunStarted.max_rounds - 1`) is final whenever it is reached, so its aggregate
is streamed token by token as the aggregator writes it: the first content token arrives when
that aggregate starts, after every earlier round (the least any correct choice allows, since
an earlier round's text may be replaced). A run that stops sooner (a budget or an agreement
rule) is known to be final only at its RoundFinished; its aggregate is then sent whole.
Before that, the stream opens at once with the assistant role chunk, and keep-alive comments
hold it open while the members think. The chunk with the finish reason carries conclave's
account of the run in a `conclave` field, as a non-streamed completion does: who wrote the
answer (`decided_by`), every fallback and why, each member's calls.

When the conversation asks for the answer in a form (the letter only, a number, numbered
parts), the final aggregate's pieces are its working: they stream as `reasoning_content`, and
the answer written in the asked form follows as `content` once the run has ended.

A client cannot take text back: when the last round's aggregator breaks off after some of its
text was sent (AggregateRestarted), the fallback's text is not appended to it; the stream
ends with an error instead, and the run's transcript keeps the fallback's consensus. When the
aggregator failed before sending anything, the fallback's text streams as usual.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel

from conclave.consensus.events import (
    AggregateDelta,
    AggregateRestarted,
    ConsensusEvent,
    RoundFinished,
    RunStarted,
)
from conclave.consensus.transcript import CallRecord
from conclave.server.schemas import ConsensusSummary
from conclave.server.sse import data_frame
from conclave.types import Usage

DONE = data_frame("[DONE]")


class FinalAnswerText:
    """Picks the final answer's text out of a run's events, as early as it is certain."""

    def __init__(self, *, asks_form: bool = False) -> None:
        self._asks_form = asks_form
        self._reasoning_sent = False
        self._last_possible_round: int | None = None
        self._sent = False
        self.broken_off: CallRecord | None = None
        """The aggregator call whose text was partly sent before it failed: the text the
        client holds is not the answer, and the stream must end with an error."""

    def reasoning_of(self, event: ConsensusEvent) -> str | None:
        """The text this event adds to the final answer's working (when a form is asked): the
        last possible round's pieces as they come, else the final round's working whole."""
        if not self._asks_form:
            return None
        if isinstance(event, AggregateDelta) and event.round == self._last_possible_round:
            self._reasoning_sent = self._reasoning_sent or bool(event.text)
            return event.text or None
        if isinstance(event, RoundFinished) and event.final and not self._reasoning_sent:
            return event.record.reasoning or None
        return None

    def text_of(self, event: ConsensusEvent) -> str | None:
        """The text this event adds to the final answer, or None."""
        if self._asks_form:
            if isinstance(event, RunStarted):
                self._last_possible_round = event.max_rounds - 1
            if isinstance(event, RoundFinished) and event.final:
                return event.record.consensus  # the answer in the asked form, whole
            return None
        if isinstance(event, RunStarted):
            self._last_possible_round = event.max_rounds - 1
        elif isinstance(event, AggregateDelta):
            if event.round == self._last_possible_round and event.text and not self.broken_off:
                self._sent = True
                return event.text
        elif isinstance(event, AggregateRestarted):
            if event.round == self._last_possible_round and self._sent:
                self.broken_off = event.failed
        elif (
            isinstance(event, RoundFinished)
            and event.final
            and not self._sent
            and event.record.aggregate is not None
        ):
            # An earlier round ended the run, or the last kept the previous round's consensus
            # after its aggregator failed before writing anything, or the aggregate was not
            # streamed: the answer is sent whole, as the checks after the combiner left it.
            return event.record.consensus
        return None


class ChunkWriter:
    """Serialises the chunks of one completion (same id, created and model on each)."""

    def __init__(self, completion_id: str, created: int, model: str, *, include_usage: bool):
        self._base: dict[str, object] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
        }
        if include_usage:
            self._base["usage"] = None
        self.include_usage = include_usage

    def role(self) -> bytes:
        return self._choice({"role": "assistant", "content": ""}, None)

    def content(self, text: str) -> bytes:
        return self._choice({"content": text}, None)

    def reasoning(self, text: str) -> bytes:
        return self._choice({"reasoning_content": text}, None)

    def annotations(self, annotations: Sequence[BaseModel]) -> bytes:
        """A chunk carrying the answer's citations (`delta.annotations`), before the finish."""
        shown = [annotation.model_dump(mode="json") for annotation in annotations]
        return self._choice({"annotations": shown}, None)

    def finish(self, reason: str, summary: ConsensusSummary) -> bytes:
        """The last chunk of the answer: its finish reason, and conclave's account of the run
        in a `conclave` field (as a non-streamed completion carries it)."""
        choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}
        chunk = {**self._base, "choices": [choice], "conclave": summary.model_dump(mode="json")}
        return data_frame(json.dumps(chunk))

    def usage(self, usage: Usage) -> bytes:
        totals = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
        return data_frame(json.dumps({**self._base, "choices": [], "usage": totals}))

    def _choice(self, delta: dict[str, object], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return data_frame(json.dumps({**self._base, "choices": [choice]}))
