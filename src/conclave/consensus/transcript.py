"""The record of a consensus run: every call made, and the answer.

It is built from the engine's events, returned to the caller, printed by `--json`, stored and
hashed into receipts. Nothing of a run is left out of it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from conclave.consensus.citations import Citation, CitationReport, RetrievalReport
from conclave.consensus.swarm_report import SwarmReport
from conclave.types import Frozen, Message, Usage

CallRole = Literal["member", "aggregator", "reviewer", "step"]
"""What a call was for: a member's answer, a consensus written, a peer review, or a call of a
step beyond the rounds (grounding, a check, a plan)."""
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

    def asked_beyond(self, conversation: Sequence[Message]) -> bool:
        """Whether this call was sent more than `conversation`: a prompt added to it (to work
        the answer out, to revise it)."""
        return len(_sent(self, conversation)) > len(conversation)

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


class StepNote(Frozen):
    """A step's report in words: what it did, for people to read."""

    kind: Literal["note"] = "note"
    text: str


class AnswerFormReport(Frozen):
    """What writing the answer in the asked form did: the form the conversation asked for
    (letter, number, word, words, json, parts) and the text the answer was read from, kept as
    the run's reasoning."""

    kind: Literal["answer_form"] = "answer_form"
    form: str
    reasoning: str

    @property
    def text(self) -> str:
        """The report in a line, for people."""
        return f"answer written as {self.form}, the working kept as reasoning"


StepReport = Annotated[
    StepNote | SwarmReport | AnswerFormReport | RetrievalReport | CitationReport,
    Field(discriminator="kind"),
]
"""What a step reports besides its calls. A step with a report of its own shape adds its
model here as one more member of a union discriminated by `kind`, so that the report is
typed in the transcript and read back from the store as what it was."""


class StepRecord(Frozen):
    """What a step beyond the members' rounds did: the grounding of the conversation before the
    first round, a check of the consensus after the combiner, a plan: its name, the model calls
    it made and its report."""

    step: str
    calls: tuple[CallRecord, ...] = ()
    report: StepReport | None = None


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
    calculation: bool = False
    """Whether the question asks for a calculation (`conclave.consensus.kinds`): with the
    answer's kind, the question's kind a threshold is chosen for."""


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
    steps: tuple[StepRecord, ...] = ()
    """What steps beyond the members' answers did in this round: a combiner's plan, the
    checks of the final consensus."""
    revised_answer: str | None = None
    """The consensus as a check after the combiner revised it; None: the aggregate's text."""

    @property
    def answered(self) -> tuple[CallRecord, ...]:
        return tuple(response for response in self.responses if response.ok)

    @property
    def reuses_answer(self) -> bool:
        """Whether the consensus is an answer already counted (a member's, an earlier round's)
        rather than a call of its own."""
        return self.decided_by in _REUSED_ANSWER

    @property
    def consensus(self) -> str:
        """The round's consensus: as revised by a check, else the aggregate's text."""
        if self.revised_answer is not None:
            return self.revised_answer
        return self.aggregate.text if self.aggregate is not None else ""

    @property
    def reasoning(self) -> str:
        """The working the consensus was read from, where it was written in an asked form."""
        reports = [step.report for step in self.steps if step.report is not None]
        return next((r.reasoning for r in reports if isinstance(r, AnswerFormReport)), "")

    @property
    def calls(self) -> tuple[CallRecord, ...]:
        """Every model call this round made, each once: the members', the reviews and failed
        attempts, the deciding call unless it reuses an answer counted elsewhere, and the
        steps' calls."""
        calls = (*self.responses, *self.other_calls)
        if self.aggregate is not None and not self.reuses_answer:
            calls = (*calls, self.aggregate)
        return (*calls, *(call for step in self.steps for call in step.calls))

    @property
    def usage(self) -> Usage:
        return Usage.total(call.usage for call in self.calls)


def citation_report(record: RoundRecord) -> CitationReport | None:
    """The citation check's report among a round's steps, if one ran."""
    for step in reversed(record.steps):
        if isinstance(step.report, CitationReport):
            return step.report
    return None


class Transcript(Frozen):
    """A whole run: its set-up, the conversation, every round, the answer and the totals."""

    id: str
    created_at: datetime
    config: dict[str, object] = Field(default_factory=dict)
    conversation: tuple[Message, ...]
    """The conversation as the caller gave it."""
    prepared: tuple[StepRecord, ...] = ()
    """What the steps before the first round did (grounding the conversation in documents)."""
    prepared_conversation: tuple[Message, ...] | None = None
    """The conversation the rounds were given, where a step before them rewrote it."""
    rounds: tuple[RoundRecord, ...] = ()
    answer: str = ""
    """The consensus answer; in the form the conversation asked for (the letter only, the
    number only, each numbered part...), when it asked for one."""
    reasoning: str = ""
    """The working the answer was read from, when the answer was written in an asked form out
    of a longer text ("" when the consensus text was the answer as it stands)."""
    agreement: Agreement | None = None
    """The last round's agreement: how far the members back `answer`."""
    stop_reason: StopReason | None = None
    usage: Usage = Usage()
    duration_s: float = 0.0
    citations: tuple[Citation, ...] = ()
    """In a grounded run, the citations of `answer`: each marker with its passage (id, file,
    span, snippet), as the citation check left them."""
    abstained: bool = False
    """A grounded run found the answer not in the documents, and said so."""

    @property
    def retrieval(self) -> RetrievalReport | None:
        """The passages a grounded run gave the members."""
        for step in self.prepared:
            if isinstance(step.report, RetrievalReport):
                return step.report
        return None

    @property
    def citation_report(self) -> CitationReport | None:
        """What the citation check of a grounded run found and did."""
        return citation_report(self.rounds[-1]) if self.rounds else None

    @property
    def asked(self) -> tuple[Message, ...]:
        """The conversation the rounds were given: as prepared, else as the caller gave it."""
        return self.prepared_conversation or self.conversation

    def calls(self) -> Iterator[tuple[int, CallRecord]]:
        """Every call of the run with its round's index, in order; the calls of the steps
        before the first round count as round 0's."""
        for step in self.prepared:
            for call in step.calls:
                yield 0, call
        for record in self.rounds:
            for call in record.calls:
                yield record.index, call

    def sent(self, call: CallRecord) -> tuple[Message, ...]:
        """Every message `call` (a record of this run) was sent."""
        return _sent(call, self.asked)

    def standalone_calls(self, label: str) -> tuple[CallRecord, ...]:
        """Every call of this run as another run's transcript keeps it (`standalone_call`)."""
        return tuple(standalone_call(call, self.asked, label) for _, call in self.calls())

    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)


def standalone_call(call: CallRecord, asked: Sequence[Message], label: str) -> CallRecord:
    """`call`, a record of a run that was asked `asked`, as the transcript of a run it is nested
    in keeps it: its model named after `label` (a swarm's step, a request's part), with every
    message it was sent, since the nested run's conversation is not the outer run's."""
    return call.model_copy(
        update={
            "model": f"{label} {call.model}",
            "conversation_messages": 0,
            "messages": _sent(call, asked),
        }
    )


def _sent(call: CallRecord, asked: Sequence[Message]) -> tuple[Message, ...]:
    """Every message `call` was sent, its run having been asked `asked`: the first
    `conversation_messages` of them (kept once, in the run), then its own."""
    return (*asked[: call.conversation_messages], *call.messages)
