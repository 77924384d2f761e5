"""The consensus algorithm, and the only place that knows it.

The steps before the first round may rewrite the conversation (grounding it in documents).
Round 0 sends the conversation to the members at once; the combiner (by default an aggregator
model) turns their answers into a consensus; each improvement round sends the conversation plus
that consensus plus the improvement prompt; a stop rule ends the run, and the checks after the
combiner read (and may revise) the final consensus. A round whose selector chose nobody is its
combiner's alone. Every model call goes through `consensus.calls` (deadline, breaker, record).

A failing member is recorded and the round goes on while the quorum holds; once the quorum has
answered, a straggler is left behind after a grace (`consensus.stragglers`), and a member that
keeps failing rests (`consensus.health`), as does an aggregator, whose fallbacks then write the
consensus at once. A round in which no member answered, before any consensus exists, asks the
members that failed transiently once more rather than losing the request; a round in which
every member rests fails at once, saying that retrying now is pointless. Everything is yielded
as typed events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import uuid
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from datetime import UTC, datetime

from conclave.config import ConsensusConfig
from conclave.consensus.agreement import Similarity
from conclave.consensus.calls import ModelCalls
from conclave.consensus.events import (
    AggregateFinished,
    AnswerChecked,
    ConsensusDone,
    ConsensusEvent,
    ConversationPrepared,
    MemberAnswered,
    MemberFailed,
    RoundFinished,
    RoundStarted,
    RunStarted,
)
from conclave.consensus.health import Admission, MemberHealth, member_key
from conclave.consensus.panel import Member, Panel
from conclave.consensus.records import worth_asking_again
from conclave.consensus.steps import (
    AnswerStep,
    Combiner,
    ConversationStep,
    MemberSelector,
    StopRule,
)
from conclave.consensus.stragglers import GracePolicy, late_record
from conclave.consensus.strategies import build_steps
from conclave.consensus.transcript import (
    CallRecord,
    RoundRecord,
    StepRecord,
    StopReason,
    Transcript,
    citation_report,
)
from conclave.errors import ConfigError, ConsensusError
from conclave.prompt_checks import check_prompt
from conclave.providers.retries import RetryWatch
from conclave.types import Message, Usage


class ConsensusEngine:
    """Runs consensus for one config and panel. Reusable: each `run` is independent.

    The config's `strategy` chooses the steps (see `conclave.consensus.strategies`);
    `selector`, `combiner` and `stop_rules` replace single steps, `before` and `after` the
    steps around the rounds.
    """

    def __init__(
        self,
        config: ConsensusConfig,
        panel: Panel,
        *,
        selector: MemberSelector | None = None,
        combiner: Combiner | None = None,
        stop_rules: Sequence[StopRule] | None = None,
        before: Sequence[ConversationStep] | None = None,
        after: Sequence[AnswerStep] | None = None,
        rng: random.Random | None = None,
        health: MemberHealth | None = None,
        similarity: Similarity | None = None,
    ) -> None:
        self.config = config
        self.panel = panel
        self.health = health or MemberHealth(
            failures=config.breaker_failures, cooldown_s=config.breaker_cooldown_s
        )
        """The members' breakers, shared by every run of this engine."""
        self._grace = GracePolicy.from_config(config)
        self._calls = ModelCalls(self.health, timeout_s=config.timeout_s)
        self._rng = rng or random.Random()
        self._similarity = similarity
        steps = build_steps(
            config,
            panel,
            calls=self._calls,
            rng=self._rng,
            similarity=similarity,
            nested=self._nested,
        )
        self._steps = dataclasses.replace(
            steps,
            selector=selector or steps.selector,
            combiner=combiner or steps.combiner,
            stop_rules=tuple(stop_rules) if stop_rules is not None else steps.stop_rules,
            before=tuple(before) if before is not None else steps.before,
            after=tuple(after) if after is not None else steps.after,
        )

    def _nested(self, config: ConsensusConfig, panel: Panel) -> ConsensusEngine:
        """The engine of a consensus run inside this one's (a swarm's step): the same
        breakers and randomness."""
        return ConsensusEngine(
            config, panel, rng=self._rng, health=self.health, similarity=self._similarity
        )

    async def run(
        self, conversation: Sequence[Message], *, stream_aggregate: bool = True
    ) -> AsyncGenerator[ConsensusEvent, None]:
        """Run the consensus on `conversation`, yielding events; the last is ConsensusDone.

        With `stream_aggregate` the aggregator's text also arrives as AggregateDelta pieces;
        without it the aggregator is called once, which costs less CPU per run.

        A round that loses its quorum, or whose combiner and fallbacks all fail, keeps the
        previous round's consensus (recorded as `previous_round`) and ends the run. Raises
        ConsensusError (with the partial transcript) only when no consensus exists at all.
        """
        run = _RunState(conversation=self._full_conversation(conversation), config=self.config)
        yield RunStarted(
            run_id=run.id,
            members=tuple(m.label for m in self.panel.members),
            aggregator=self.panel.aggregator.label,
            max_rounds=self._steps.max_rounds,
        )
        for step in self._steps.before:
            async with aclosing(step.prepare(run.asked)) as preparing:
                async for event in preparing:
                    yield event
                    if isinstance(event, ConversationPrepared):
                        run.prepare(event)
        conversation = run.asked
        stop_reason: StopReason | None = None
        while stop_reason is None:
            index = len(run.rounds)
            members = self._steps.selector.select(
                index, self.panel.members, run.rounds, conversation
            )
            yield RoundStarted(round=index, members=tuple(m.label for m in members))
            messages = self._steps.prompt.messages(conversation, run.rounds)
            finished: dict[str, CallRecord] = {}
            asking = self._member_events(index, members, conversation, messages, finished)
            async with aclosing(asking) as member_events:
                async for member_event in member_events:
                    yield member_event
            responses = tuple(finished[m.label] for m in members)
            earlier: tuple[CallRecord, ...] = ()
            # No member answered and there is no consensus yet to keep: the request would be
            # lost, so the members that failed transiently get one more try (unless their
            # breaker has just opened: they rest).
            again = _ask_again(run, responses)
            asked = [m for m in members if m.label in again and not self._calls.resting(m)]
            if asked:
                earlier = tuple(finished[m.label] for m in asked)
                asking = self._member_events(index, asked, conversation, messages, finished)
                async with aclosing(asking) as member_events:
                    async for member_event in member_events:
                        yield member_event
                responses = tuple(finished[m.label] for m in members)
            quorum_error = self._quorum_error(index, responses) if members else None
            if quorum_error is not None:
                record = RoundRecord(index=index, responses=responses, other_calls=earlier)
                kept = _keep_previous(run, record)
                if kept is None:
                    quorum_error.transcript = run.transcript(record, stop_reason="quorum_lost")
                    raise quorum_error
                record, stop_reason = kept, "quorum_lost"
                run.rounds.append(record)
            else:
                candidates = self._steps.pool.candidates(run.rounds, [r for r in responses if r.ok])
                outcome: AggregateFinished | None = None
                combining = self._steps.combiner.combine(
                    index, conversation, candidates, stream=stream_aggregate
                )
                async with aclosing(combining) as steps:
                    async for step_event in steps:
                        yield step_event
                        if isinstance(step_event, AggregateFinished):
                            outcome = step_event
                record = _round_record(index, responses, outcome, earlier)
                if record.aggregate is None or not record.aggregate.ok:
                    kept = _keep_previous(run, record)
                    if kept is None:
                        raise ConsensusError(
                            _aggregator_failure(record.aggregate),
                            transcript=run.transcript(record, stop_reason="aggregator_failed"),
                        )
                    record, stop_reason = kept, "aggregator_failed"
                    run.rounds.append(record)
                else:
                    if candidates:  # a round that asked nobody has no agreement to measure
                        agreement = self._steps.meter.measure(
                            conversation, candidates, record.aggregate.text
                        )
                        record = record.model_copy(update={"agreement": agreement})
                    run.rounds.append(record)
                    stop_reason = self._stop_reason(run)
            if stop_reason is not None:
                async with aclosing(self._checks(record, conversation)) as checks:
                    async for check_event in checks:
                        yield check_event
                        if isinstance(check_event, AnswerChecked):
                            record = _checked(record, check_event)
                run.rounds[-1] = record
            yield RoundFinished(round=index, record=record, final=stop_reason is not None)
        yield ConsensusDone(transcript=run.transcript(stop_reason=stop_reason))

    async def _checks(
        self, record: RoundRecord, conversation: Sequence[Message]
    ) -> AsyncGenerator[ConsensusEvent, None]:
        """The checks after the combiner, in order, each reading the consensus as the ones
        before it left it."""
        answer = record.consensus
        for step in self._steps.after:
            async with aclosing(step.check(record, conversation, answer)) as checking:
                async for event in checking:
                    yield event
                    if isinstance(event, AnswerChecked):
                        answer = event.answer

    async def run_to_end(self, conversation: Sequence[Message]) -> Transcript:
        """Run the consensus and return only its transcript."""
        async for event in self.run(conversation, stream_aggregate=False):
            if isinstance(event, ConsensusDone):
                return event.transcript
        raise AssertionError("the engine ended without a ConsensusDone event")  # pragma: no cover

    async def _member_events(
        self,
        index: int,
        members: Sequence[Member],
        conversation: Sequence[Message],
        messages: Sequence[Message],
        finished: dict[str, CallRecord],
    ) -> AsyncGenerator[ConsensusEvent, None]:
        """Ask `members` the round's `messages` (which start with `conversation`), keeping each
        one's record in `finished` (by label), and yield an event per record as it comes."""
        async with aclosing(self._ask_members(members, messages)) as answers:
            async for answer in answers:
                response = answer.referencing(conversation)
                finished[response.model] = response
                event = MemberAnswered if response.ok else MemberFailed
                yield event(round=index, response=response)

    def _full_conversation(self, conversation: Sequence[Message]) -> tuple[Message, ...]:
        full = tuple(conversation) or self.config.initial_conversation
        if not any(message.role == "user" for message in full):
            raise ConfigError(
                "the conversation has no user message: give a prompt, or set "
                "initial_conversation in the config"
            )
        check_prompt(full)
        return full

    async def _ask_members(
        self, members: Sequence[Member], messages: Sequence[Message]
    ) -> AsyncGenerator[CallRecord, None]:
        """Ask every member at once; yield one record per member: those resting after repeated
        failures first, then the answers in the order they finish, and the stragglers the
        round leaves behind once its quorum answered (see `consensus.stragglers`).

        A member's retries never hold the round beyond its grace: once the quorum answered, no
        member may start a retry that would end after the grace, and a member retrying when
        the grace ends is left behind. A tight deadline on first tries was the other way: it
        would cut slow but healthy members too (a large model, an embedded one on a busy
        CPU), where a retry is a sure sign that the member is failing now. Hedging (asking a
        slow member twice) costs calls and does nothing for a dead upstream.
        """
        needed = min(self.config.quorum, len(members))
        admitted, resting = self._admit(members, needed)
        for member in resting:
            yield self._calls.skipped(member, "member")
        started = time.perf_counter()
        watches = {member.label: RetryWatch() for member, _ in admitted}
        tasks = {
            asyncio.create_task(
                self._calls.ask(
                    member, "member", messages, admitted=admission, watch=watches[member.label]
                )
            ): member
            for member, admission in admitted
        }
        pending = set(tasks)
        quorum_latencies: list[float] = []
        quorum_at_s = 0.0
        grace_ends_s: float | None = None
        left_behind_at: dict[asyncio.Task[CallRecord], float | None] = {}
        try:
            while pending:
                cuts = [at for task in pending if (at := left_behind_at.get(task)) is not None]
                if grace_ends_s is not None and grace_ends_s > time.perf_counter() - started:
                    cuts.append(grace_ends_s)  # wake then to leave retrying members behind
                wait_s = None
                if cuts:
                    wait_s = max(0.0, min(cuts) - (time.perf_counter() - started))
                done, pending = await asyncio.wait(
                    pending, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED
                )
                for task in (task for task in tasks if task in done):  # panel order on ties
                    record = task.result()
                    if record.ok and len(quorum_latencies) < needed:
                        quorum_latencies.append(record.latency_s)
                    yield record
                if len(quorum_latencies) >= needed and grace_ends_s is None:
                    quorum_at_s = time.perf_counter() - started
                    grace_ends_s = quorum_at_s + self._grace.grace_s(quorum_latencies)
                    no_retry_after = time.monotonic() + (grace_ends_s - quorum_at_s)
                    for task in pending:
                        member = tasks[task]
                        watches[member.label].no_retry_after = no_retry_after
                        left_behind_at[task] = self._grace.left_behind_at_s(
                            quorum_at_s,
                            quorum_latencies,
                            self.health.usual_latency_s(member_key(member.spec)),
                            embedded=member.provider.capabilities.embedded,
                        )
                ran_s = time.perf_counter() - started
                late = [  # one that ended while a record was being yielded is not late
                    task
                    for task in pending
                    if not task.done()
                    and (
                        _due(left_behind_at.get(task), ran_s)
                        or (watches[tasks[task].label].retrying and _due(grace_ends_s, ran_s))
                    )
                ]
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
                for task in late:
                    pending.discard(task)
                    # Not a failure for the breaker (the call path counts a cancelled call
                    # neither way): leaving it behind was the round's choice, and under load
                    # every member runs late now and then.
                    yield late_record(
                        tasks[task].label, messages, ran_s=ran_s, quorum_at_s=quorum_at_s
                    )
        finally:
            for task, member in tasks.items():
                if not task.done():  # one cancelled before it started never gives back a probe
                    task.cancel()
                    self.health.abandon(member_key(member.spec))
            await asyncio.gather(*tasks, return_exceptions=True)

    def _admit(
        self, members: Sequence[Member], needed: int
    ) -> tuple[list[tuple[Member, Admission]], list[Member]]:
        """The members to call (each with its breaker's admission) and those to skip while
        their breaker is open. Resting members are called anyway when fewer than the quorum
        would be left, but not when every member rests: then the round fails at once (the
        breakers let a probe through once a cooldown is over)."""
        decisions = [(member, self._calls.admit(member)) for member in members]
        calling: list[tuple[Member, Admission]] = [
            (member, admission) for member, admission in decisions if admission != "skip"
        ]
        resting = [member for member, admission in decisions if admission == "skip"]
        while calling and len(calling) < needed and resting:
            calling.append((resting.pop(0), "call"))
        return calling, resting

    def _quorum_error(self, index: int, responses: tuple[CallRecord, ...]) -> ConsensusError | None:
        """The error of a round below its quorum (None when the quorum answered); not
        `retryable` when every member was resting: asking again now would fail the same way."""
        needed = min(self.config.quorum, len(responses))
        answered = sum(1 for response in responses if response.ok)
        if answered >= needed and answered > 0:
            return None
        failures = "\n".join(
            f"  - {r.model}: {r.error.type}: {r.error.message}" for r in responses if r.error
        )
        if all(response.finish_reason == "skipped" for response in responses):
            return ConsensusError(
                f"round {index}: every member is resting after repeated failures, so none "
                f"was asked; asking again before a cooldown ends fails the same way:\n{failures}",
                retryable=False,
            )
        return ConsensusError(
            f"round {index}: {answered} of {len(responses)} members answered, "
            f"below the quorum of {max(needed, 1)}:\n{failures}"
        )

    def _stop_reason(self, run: _RunState) -> StopReason | None:
        usage = run.usage
        for rule in self._steps.stop_rules:
            reason = rule.stop_reason(run.rounds, usage)
            if reason is not None:
                return reason
        return None


class _RunState:
    """What one run has gathered so far."""

    def __init__(self, *, conversation: tuple[Message, ...], config: ConsensusConfig) -> None:
        self.id = uuid.uuid4().hex
        self.created_at = datetime.now(UTC)
        self.started = time.perf_counter()
        self.conversation = conversation
        self.prepared_conversation: tuple[Message, ...] | None = None
        self.prepared: list[StepRecord] = []
        self.config = config
        self.rounds: list[RoundRecord] = []

    @property
    def asked(self) -> tuple[Message, ...]:
        """The conversation the rounds are given: as prepared, else as the caller gave it."""
        return self.prepared_conversation or self.conversation

    def prepare(self, prepared: ConversationPrepared) -> None:
        """Keep what a step before the first round did, and the conversation it left."""
        self.prepared.append(prepared.record)
        if prepared.conversation != self.asked:
            self.prepared_conversation = prepared.conversation

    @property
    def usage(self) -> Usage:
        prepared = (call.usage for step in self.prepared for call in step.calls)
        return Usage.total((record.usage for record in self.rounds), Usage.total(prepared))

    def transcript(
        self, unfinished: RoundRecord | None = None, *, stop_reason: StopReason | None
    ) -> Transcript:
        rounds = (*self.rounds, unfinished) if unfinished else tuple(self.rounds)
        last = self.rounds[-1] if self.rounds else None
        prepared = (call.usage for step in self.prepared for call in step.calls)
        checked = citation_report(last) if last else None
        return Transcript(
            id=self.id,
            created_at=self.created_at,
            config=self.config.model_dump(mode="json"),
            conversation=self.conversation,
            prepared=tuple(self.prepared),
            prepared_conversation=self.prepared_conversation,
            rounds=rounds,
            answer=last.consensus if last else "",
            reasoning=last.reasoning if last else "",
            agreement=last.agreement if last else None,
            stop_reason=stop_reason,
            usage=Usage.total((record.usage for record in rounds), Usage.total(prepared)),
            duration_s=time.perf_counter() - self.started,
            citations=checked.citations if checked else (),
            abstained=checked.abstained if checked else False,
        )


def _due(left_behind_at_s: float | None, ran_s: float) -> bool:
    return left_behind_at_s is not None and left_behind_at_s <= ran_s


def _ask_again(run: _RunState, responses: tuple[CallRecord, ...]) -> tuple[str, ...]:
    """The members to ask once more in a round where none answered, when the run has no
    consensus yet to fall back on: those whose failure was transient (see
    `worth_asking_again`). Empty otherwise."""
    if any(response.ok for response in responses):
        return ()
    if run.rounds and run.rounds[-1].aggregate is not None:
        return ()
    return tuple(response.model for response in responses if worth_asking_again(response))


def _round_record(
    index: int,
    responses: tuple[CallRecord, ...],
    outcome: AggregateFinished | None,
    earlier: tuple[CallRecord, ...],
) -> RoundRecord:
    """The round's record; `earlier`: the members' failed first tries of a round asked again."""
    if outcome is None:
        return RoundRecord(index=index, responses=responses, other_calls=earlier)
    return RoundRecord(
        index=index,
        responses=responses,
        aggregate=outcome.response,
        decided_by=outcome.decided_by,
        other_calls=(*earlier, *outcome.other_calls),
        steps=outcome.steps,
    )


def _checked(record: RoundRecord, checked: AnswerChecked) -> RoundRecord:
    """`record` with what a check after the combiner did, and its answer if it revised it."""
    revised = checked.answer if checked.revised else record.revised_answer
    return record.model_copy(
        update={"steps": (*record.steps, checked.record), "revised_answer": revised}
    )


def _keep_previous(run: _RunState, record: RoundRecord) -> RoundRecord | None:
    """`record` carrying the previous round's consensus, or None when there is none."""
    previous = run.rounds[-1] if run.rounds else None
    if previous is None or previous.aggregate is None:
        return None
    failed = (record.aggregate,) if record.aggregate is not None else ()
    return record.model_copy(
        update={
            "aggregate": previous.aggregate,
            "decided_by": "previous_round",
            "other_calls": (*record.other_calls, *failed),
            "agreement": previous.agreement,
        }
    )


def _aggregator_failure(aggregate: CallRecord | None) -> str:
    if aggregate is None or aggregate.error is None:
        return "the aggregator produced no consensus"
    error = aggregate.error
    return f"the aggregator {aggregate.model} failed: {error.type}: {error.message}"
