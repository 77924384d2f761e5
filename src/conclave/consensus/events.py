"""What the engine yields while it runs. Every interface (CLI, HTTP, web page) consumes these.

The stream of one run is:
`RunStarted`; a `ConversationPrepared` per step before the first round (grounding); then per
round `RoundStarted`, `MemberAnswered`/`MemberFailed` (in the order the members finish),
`AggregateDelta`* (the aggregate's text as it is produced; an `AggregateRestarted` voids the
round's text so far when its writer failed midway; a `CombinerFellBack` says that a fallback
writes the consensus, and why), `AggregateFinished`; after the final
round's consensus an `AnswerChecked` per check that reads it; `RoundFinished`; finally
`ConsensusDone` carrying the transcript.

`StepProgress` may come anywhere between `RunStarted` and `ConsensusDone`: the progress of a
step's own work (a swarm's plan and its steps, a retrieval, a citation check), forwarded by
the engine as the step yields it. Its `call` (a model call the step finished) is shown as it
comes; the step also returns it in its final record, which is what the transcript keeps.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from conclave.consensus.transcript import (
    CallRecord,
    DecidedBy,
    RoundRecord,
    StepRecord,
    StepReport,
    Transcript,
)
from conclave.types import Frozen, Message


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


class CombinerFellBack(Frozen):
    """The round's combiner (or a fallback) did not write the consensus: `failed` is its call,
    whose error says why (it failed, or was skipped while its model rests after repeated
    failures); `fallback` writes it next."""

    kind: Literal["combiner_fell_back"] = "combiner_fell_back"
    round: int
    failed: CallRecord
    fallback: DecidedBy


class AggregateFinished(Frozen):
    """The round's consensus: `response` is the call whose text it is (a vote's winning member
    answer, or the aggregator's); `other_calls` are reviews and failed attempts before it;
    `steps` what the combiner's own steps did (a plan)."""

    kind: Literal["aggregate_finished"] = "aggregate_finished"
    round: int
    response: CallRecord
    decided_by: DecidedBy = "aggregator"
    other_calls: tuple[CallRecord, ...] = ()
    steps: tuple[StepRecord, ...] = ()


class StepProgress(Frozen):
    """A step's progress beyond the members' answers: `step` names the step ("grounding",
    "swarm", ...), `name` what within it (a plan step's id, a document), `status` how far it
    got, `message` a line for people; `call` a model call it just finished. `round` is None
    before the first round."""

    kind: Literal["step_progress"] = "step_progress"
    step: str
    round: int | None = None
    name: str = ""
    status: Literal["started", "finished", "failed", "note"] = "note"
    message: str = ""
    call: CallRecord | None = None
    report: StepReport | None = None
    """The step's typed report as it stands (a swarm's plan once it is made), for the
    interfaces that draw it; the final one is in the step's record."""


class ConversationPrepared(Frozen):
    """A step before the first round is done: `conversation` is what the rounds are given
    next (the same one when the step left it alone), `record` what the step did."""

    kind: Literal["conversation_prepared"] = "conversation_prepared"
    step: str
    conversation: tuple[Message, ...]
    record: StepRecord


class AnswerChecked(Frozen):
    """A check after the combiner read the final consensus: `answer` is the consensus from now
    on (revised, or as it was when `revised` is false); `record` what the check did. A reader
    showing the aggregate's text replaces it with `answer` when `revised`."""

    kind: Literal["answer_checked"] = "answer_checked"
    round: int
    step: str
    answer: str
    revised: bool
    record: StepRecord


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
    | ConversationPrepared
    | StepProgress
    | RoundStarted
    | MemberAnswered
    | MemberFailed
    | AggregateDelta
    | AggregateRestarted
    | CombinerFellBack
    | AggregateFinished
    | AnswerChecked
    | RoundFinished
    | ConsensusDone,
    Field(discriminator="kind"),
]
