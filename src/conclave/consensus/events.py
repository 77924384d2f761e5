"""What the engine yields while it runs. Every interface (CLI, HTTP, web page) consumes these.

The stream of one run is:
`RunStarted`, then per round `RoundStarted`, `MemberAnswered`/`MemberFailed` (in the order
the members finish), `AggregateDelta`* (the aggregate's text as it is produced; an
`AggregateRestarted` voids the round's text so far when its writer failed midway),
`AggregateFinished`, `RoundFinished`; finally `ConsensusDone` carrying the transcript.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from conclave.consensus.transcript import CallRecord, DecidedBy, RoundRecord, Transcript
from conclave.types import Frozen


class RunStarted(Frozen):
    kind: Literal["run_started"] = "run_started"
    run_id: str
    members: tuple[str, ...]
    aggregator: str
    max_rounds: int


class RoundStarted(Frozen):
    kind: Literal["round_started"] = "round_started"
    round: int
    members: tuple[str, ...]


class MemberAnswered(Frozen):
    kind: Literal["member_answered"] = "member_answered"
    round: int
    response: CallRecord


class MemberFailed(Frozen):
    kind: Literal["member_failed"] = "member_failed"
    round: int
    response: CallRecord


class AggregateDelta(Frozen):
    kind: Literal["aggregate_delta"] = "aggregate_delta"
    round: int
    text: str


class AggregateRestarted(Frozen):
    """The round's aggregate text streamed so far is void: `failed`, the call writing it, broke
    off midway; a fallback (if any) writes the consensus anew in the AggregateDelta that
    follow. A reader showing the text clears it; one that cannot take text back (an OpenAI
    stream) must not append the new text to the old."""

    kind: Literal["aggregate_restarted"] = "aggregate_restarted"
    round: int
    failed: CallRecord


class AggregateFinished(Frozen):
    """The round's consensus: `response` is the call whose text it is (a vote's winning member
    answer, or the aggregator's); `other_calls` are reviews and failed attempts before it."""

    kind: Literal["aggregate_finished"] = "aggregate_finished"
    round: int
    response: CallRecord
    decided_by: DecidedBy = "aggregator"
    other_calls: tuple[CallRecord, ...] = ()


class RoundFinished(Frozen):
    kind: Literal["round_finished"] = "round_finished"
    round: int
    record: RoundRecord
    final: bool


class ConsensusDone(Frozen):
    kind: Literal["done"] = "done"
    transcript: Transcript


ConsensusEvent = Annotated[
    RunStarted
    | RoundStarted
    | MemberAnswered
    | MemberFailed
    | AggregateDelta
    | AggregateRestarted
    | AggregateFinished
    | RoundFinished
    | ConsensusDone,
    Field(discriminator="kind"),
]
