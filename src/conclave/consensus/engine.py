"""The consensus algorithm, and the only place that knows it.

Round 0 sends the conversation to the members at once; the combiner (by default an aggregator
model) turns their answers into a consensus; each improvement round sends the conversation plus
that consensus plus the improvement prompt; a stop rule ends the run. A failing member is
recorded and the round goes on while the quorum holds. Everything is yielded as typed events.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from datetime import UTC, datetime

from conclave.config import ConsensusConfig
from conclave.consensus.agreement import Similarity
from conclave.consensus.events import (
    AggregateFinished,
    ConsensusDone,
    ConsensusEvent,
    MemberAnswered,
    MemberFailed,
    RoundFinished,
    RoundStarted,
    RunStarted,
)
from conclave.consensus.panel import Member, Panel
from conclave.consensus.records import call_record, deadline, failed_record
from conclave.consensus.steps import Combiner, MemberSelector, StopRule
from conclave.consensus.strategies import build_steps
from conclave.consensus.transcript import CallRecord, RoundRecord, StopReason, Transcript
from conclave.errors import ConfigError, ConsensusError, ProviderError
from conclave.types import Message, Usage


class ConsensusEngine:
    """Runs consensus for one config and panel. Reusable: each `run` is independent.

    The config's `strategy` chooses the steps (see strategies.py); `selector`, `combiner` and
    `stop_rules` replace single steps.
    """

    def __init__(
        self,
        config: ConsensusConfig,
        panel: Panel,
        *,
        selector: MemberSelector | None = None,
        combiner: Combiner | None = None,
        stop_rules: Sequence[StopRule] | None = None,
        rng: random.Random | None = None,
        similarity: Similarity | None = None,
    ) -> None:
        self.config = config
        self.panel = panel
        steps = build_steps(config, panel, rng=rng or random.Random(), similarity=similarity)
        self._steps = steps
        self._selector = selector or steps.selector
        self._combiner = combiner or steps.combiner
        self._stop_rules = tuple(stop_rules) if stop_rules is not None else steps.stop_rules

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
        conversation = self._full_conversation(conversation)
        run = _RunState(conversation=conversation, config=self.config)
        yield RunStarted(
            run_id=run.id,
            members=tuple(m.label for m in self.panel.members),
            aggregator=self.panel.aggregator.label,
            max_rounds=self._steps.max_rounds,
        )
        stop_reason: StopReason | None = None
        while stop_reason is None:
            index = len(run.rounds)
            members = self._selector.select(index, self.panel.members, run.rounds)
            yield RoundStarted(round=index, members=tuple(m.label for m in members))
            messages = self._steps.prompt.messages(conversation, run.rounds)
            finished: dict[str, CallRecord] = {}
            async with aclosing(self._ask_members(members, messages)) as answers:
                async for response in answers:
                    finished[response.model] = response
                    event = MemberAnswered if response.ok else MemberFailed
                    yield event(round=index, response=response)
            responses = tuple(finished[m.label] for m in members)
            quorum_error = self._quorum_error(index, responses)
            if quorum_error is not None:
                record = RoundRecord(index=index, responses=responses)
                kept = _keep_previous(run, record)
                if kept is None:
                    raise ConsensusError(
                        quorum_error, transcript=run.transcript(record, stop_reason="quorum_lost")
                    )
                run.rounds.append(kept)
                yield RoundFinished(round=index, record=kept, final=True)
                stop_reason = "quorum_lost"
                break

            candidates = self._steps.pool.candidates(run.rounds, [r for r in responses if r.ok])
            outcome: AggregateFinished | None = None
            combining = self._combiner.combine(
                index, conversation, candidates, stream=stream_aggregate
            )
            async with aclosing(combining) as steps:
                async for step_event in steps:
                    yield step_event
                    if isinstance(step_event, AggregateFinished):
                        outcome = step_event
            record = _round_record(index, responses, outcome)
            if record.aggregate is None or not record.aggregate.ok:
                kept = _keep_previous(run, record)
                if kept is None:
                    raise ConsensusError(
                        _aggregator_failure(record.aggregate),
                        transcript=run.transcript(record, stop_reason="aggregator_failed"),
                    )
                run.rounds.append(kept)
                yield RoundFinished(round=index, record=kept, final=True)
                stop_reason = "aggregator_failed"
                break
            agreement = self._steps.meter.measure(conversation, candidates, record.aggregate.text)
            record = record.model_copy(update={"agreement": agreement})
            run.rounds.append(record)
            stop_reason = self._stop_reason(run)
            yield RoundFinished(round=index, record=record, final=stop_reason is not None)
        yield ConsensusDone(transcript=run.transcript(stop_reason=stop_reason))

    async def run_to_end(self, conversation: Sequence[Message]) -> Transcript:
        """Run the consensus and return only its transcript."""
        async for event in self.run(conversation, stream_aggregate=False):
            if isinstance(event, ConsensusDone):
                return event.transcript
        raise AssertionError("the engine ended without a ConsensusDone event")  # pragma: no cover

    def _full_conversation(self, conversation: Sequence[Message]) -> tuple[Message, ...]:
        full = tuple(conversation) or self.config.initial_conversation
        if not any(message.role == "user" for message in full):
            raise ConfigError(
                "the conversation has no user message: give a prompt, or set "
                "initial_conversation in the config"
            )
        return full

    async def _ask_members(
        self, members: Sequence[Member], messages: Sequence[Message]
    ) -> AsyncGenerator[CallRecord, None]:
        """Ask every member at once; yield their records in the order they finish."""
        tasks = [asyncio.create_task(self._ask(member, messages)) for member in members]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _ask(self, member: Member, messages: Sequence[Message]) -> CallRecord:
        timeout_s = member.spec.timeout_s or self.config.timeout_s
        started = time.perf_counter()
        try:
            async with deadline(timeout_s, member.label):
                completion = await member.complete(messages)
        except ProviderError as exc:
            return failed_record(member.label, "member", messages, exc, started)
        return call_record(
            member.label, "member", messages, completion, time.perf_counter() - started
        )

    def _quorum_error(self, index: int, responses: tuple[CallRecord, ...]) -> str | None:
        needed = min(self.config.quorum, len(responses))
        answered = sum(1 for response in responses if response.ok)
        if answered >= needed and answered > 0:
            return None
        failures = "\n".join(
            f"  - {r.model}: {r.error.type}: {r.error.message}" for r in responses if r.error
        )
        return (
            f"round {index}: {answered} of {len(responses)} members answered, "
            f"below the quorum of {max(needed, 1)}:\n{failures}"
        )

    def _stop_reason(self, run: _RunState) -> StopReason | None:
        usage = run.usage
        for rule in self._stop_rules:
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
        self.config = config
        self.rounds: list[RoundRecord] = []

    @property
    def usage(self) -> Usage:
        return sum((record.usage for record in self.rounds), Usage())

    def transcript(
        self, unfinished: RoundRecord | None = None, *, stop_reason: StopReason | None
    ) -> Transcript:
        rounds = (*self.rounds, unfinished) if unfinished else tuple(self.rounds)
        last = self.rounds[-1] if self.rounds else None
        last_aggregate = last.aggregate if last else None
        return Transcript(
            id=self.id,
            created_at=self.created_at,
            config=self.config.model_dump(mode="json"),
            conversation=self.conversation,
            rounds=rounds,
            answer=last_aggregate.text if last_aggregate else "",
            agreement=last.agreement if last else None,
            stop_reason=stop_reason,
            usage=sum((record.usage for record in rounds), Usage()),
            duration_s=time.perf_counter() - self.started,
        )


def _round_record(
    index: int, responses: tuple[CallRecord, ...], outcome: AggregateFinished | None
) -> RoundRecord:
    if outcome is None:
        return RoundRecord(index=index, responses=responses)
    return RoundRecord(
        index=index,
        responses=responses,
        aggregate=outcome.response,
        decided_by=outcome.decided_by,
        other_calls=outcome.other_calls,
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
