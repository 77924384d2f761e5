"""OpenAI's `response_format` for a consensus: the final answer is made to be the JSON asked for.

The answer is checked (JSON, an object, and the schema when one is given). A fenced
```` ```json ```` block around valid JSON is unwrapped. Otherwise the aggregator is asked once
more to rewrite the answer as JSON that fits; that call is kept in the transcript as a last
round with no members. If even the rewrite does not fit, the request fails with a clear error
rather than a 200 with text the client cannot parse.
"""

from __future__ import annotations

import json
import re

import jsonschema_rs

from conclave.consensus.calls import ask_member
from conclave.consensus.panel import Member
from conclave.consensus.transcript import RoundRecord, Transcript
from conclave.errors import ConsensusError
from conclave.server.api_errors import ApiError
from conclave.server.schemas import JsonObjectFormat, JsonSchemaFormat
from conclave.types import Message

_FENCED = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


class AnswerFormat:
    """A JSON format an answer must have; built from a request's `response_format`."""

    def __init__(self, requested: JsonObjectFormat | JsonSchemaFormat) -> None:
        self.schema: dict[str, object] | None = None
        self._validator: jsonschema_rs.Validator | None = None
        if isinstance(requested, JsonSchemaFormat):
            self.schema = requested.json_schema.json_schema
            try:
                self._validator = jsonschema_rs.validator_for(self.schema, offline=True)
            except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError):
                raise ApiError(
                    400,
                    "response_format.json_schema.schema: not a valid JSON Schema",
                    code="invalid_value",
                    param="response_format.json_schema.schema",
                ) from None

    def problem(self, text: str) -> str | None:
        """Why `text` is not an answer of this format, or None when it is."""
        try:
            value = json.loads(text)
        except ValueError:
            return "the answer is not JSON"
        if self._validator is None:
            return None if isinstance(value, dict) else "the answer is JSON but not an object"
        errors = [error.message for error in self._validator.iter_errors(value)]
        return "; ".join(errors[:5]) if errors else None

    def conforming(self, text: str) -> str | None:
        """`text` itself, or the JSON inside its code fence, when it fits; else None."""
        for candidate in (text.strip(), _unfenced(text)):
            if candidate is not None and self.problem(candidate) is None:
                return candidate
        return None

    def rewrite_messages(self, answer: str, problem: str) -> tuple[Message, ...]:
        """What the aggregator is asked when the consensus does not fit the format."""
        wanted = (
            "one JSON object"
            if self.schema is None
            else "JSON that satisfies this JSON Schema:\n" + json.dumps(self.schema)
        )
        return (
            Message(
                role="system",
                content=f"Rewrite the answer you are given as {wanted}\nKeep its content. "
                "Reply with the JSON only: no code fence, no comment.",
            ),
            Message(role="user", content=f"The answer ({problem}):\n{answer}"),
        )


def _unfenced(text: str) -> str | None:
    found = _FENCED.match(text)
    return found.group(1).strip() if found else None


async def conform(
    transcript: Transcript, answer_format: AnswerFormat, aggregator: Member, timeout_s: float
) -> Transcript:
    """The transcript with an answer of the format; raises ConsensusError (with the
    transcript, the rewrite included) when the aggregator's rewrite does not fit either."""
    fitting = answer_format.conforming(transcript.answer)
    if fitting is not None:
        return transcript.model_copy(update={"answer": fitting})
    problem = answer_format.problem(transcript.answer) or "the answer does not fit"
    messages = answer_format.rewrite_messages(transcript.answer, problem)
    record = await ask_member(aggregator, "aggregator", messages, timeout_s)
    rewrite_round = RoundRecord(index=len(transcript.rounds), responses=(), aggregate=record)
    rewritten = transcript.model_copy(
        update={
            "rounds": (*transcript.rounds, rewrite_round),
            "usage": transcript.usage + record.usage,
        }
    )
    fitting = answer_format.conforming(record.text) if record.ok else None
    if fitting is None:
        why = record.error.message if record.error else answer_format.problem(record.text)
        raise ConsensusError(
            f"the consensus could not be made to fit response_format: {why}",
            transcript=rewritten.model_copy(update={"stop_reason": "aggregator_failed"}),
        )
    return rewritten.model_copy(update={"answer": fitting})
