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
from conclave.consensus.prompts import improvement_conversation
from conclave.consensus.records import ask_member
from conclave.consensus.steps import (
    BudgetCap,
    Combiner,
    ConvergenceStop,
    EveryMember,
    IterationLimit,
    LLMAggregator,
    MemberSelector,
    StopRule,
)
from conclave.consensus.transcript import CallRecord, RoundRecord, StopReason, Transcript
from conclave.errors import ConfigError, ConsensusError
from conclave.prompt_checks import check_prompt
from conclave.types import Message, Usage


class ConsensusEngine:
    """Runs consensus for one config and panel. Reusable: each `run` is independent."""

    def __init__(
        self,
        config: ConsensusConfig,
        panel: Panel,
        *,
        selector: MemberSelector | None = None,
        combiner: Combiner | None = None,
        stop_rules: Sequence[StopRule] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.panel = panel
        self._selector = selector or EveryMember()
        self._combiner = combiner or LLMAggregator(
            panel.aggregator,
            config.aggregator_spec,
            timeout_s=config.aggregator_spec.model.timeout_s or config.timeout_s,
            rng=rng or random.Random(),
        )
        self._stop_rules = stop_rules if stop_rules is not None else default_stop_rules(config)

    async def run(
        self, conversation: Sequence[Message], *, stream_aggregate: bool = True
    ) -> AsyncGenerator[ConsensusEvent, None]:
        """Run the consensus on `conversation`, yielding events; the last is ConsensusDone.

        With `stream_aggregate` the aggregator's text also arrives as AggregateDelta pieces;
        without it the aggregator is called once, which costs less CPU per run.

        Raises ConsensusError (with the partial transcript) when a round falls below quorum or
        the aggregator fails.
        """
        conversation = self._full_conversation(conversation)
        run = _RunState(conversation=conversation, config=self.config)
        yield RunStarted(
            run_id=run.id,
            members=tuple(m.label for m in self.panel.members),
            aggregator=self.panel.aggregator.label,
            max_rounds=self.config.iterations + 1,
        )
        consensus: str | None = None
        stop_reason: StopReason | None = None
        while stop_reason is None:
            index = len(run.rounds)
            members = self._selector.select(index, self.panel.members, run.rounds)
            yield RoundStarted(round=index, members=tuple(m.label for m in members))
            messages = (
                conversation
                if consensus is None
                else improvement_conversation(
                    conversation,
                    consensus,
                    self.config.aggregated_prompt_type,
                    self.config.improvement_prompt,
                )
            )
            finished: dict[str, CallRecord] = {}
            async with aclosing(self._ask_members(members, messages)) as answers:
                async for answer in answers:
                    response = answer.referencing(conversation)
                    finished[response.model] = response
                    event = MemberAnswered if response.ok else MemberFailed
                    yield event(round=index, response=response)
            responses = tuple(finished[m.label] for m in members)
            self._check_quorum(run, index, responses)

            aggregate: CallRecord | None = None
            combining = self._combiner.combine(
                index, conversation, [r for r in responses if r.ok], stream=stream_aggregate
            )
            async with aclosing(combining) as steps:
                async for step_event in steps:
                    yield step_event
                    if isinstance(step_event, AggregateFinished):
                        aggregate = step_event.response
            record = RoundRecord(index=index, responses=responses, aggregate=aggregate)
            if aggregate is None or not aggregate.ok:
                raise ConsensusError(
                    _aggregator_failure(aggregate),
                    transcript=run.transcript(record, stop_reason="aggregator_failed"),
                )
            run.rounds.append(record)
            consensus = aggregate.text
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
        check_prompt(full)
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
        return await ask_member(member, "member", messages, timeout_s)

    def _check_quorum(self, run: _RunState, index: int, responses: tuple[CallRecord, ...]) -> None:
        needed = min(self.config.quorum, len(responses))
        answered = sum(1 for response in responses if response.ok)
        if answered >= needed:
            return
        failures = "\n".join(
            f"  - {r.model}: {r.error.type}: {r.error.message}" for r in responses if r.error
        )
        raise ConsensusError(
            f"round {index}: {answered} of {len(responses)} members answered, "
            f"below the quorum of {needed}:\n{failures}",
            transcript=run.transcript(
                RoundRecord(index=index, responses=responses), stop_reason="quorum_lost"
            ),
        )

    def _stop_reason(self, run: _RunState) -> StopReason | None:
        usage = run.usage
        for rule in self._stop_rules:
            reason = rule.stop_reason(run.rounds, usage)
            if reason is not None:
                return reason
        return None


def default_stop_rules(config: ConsensusConfig) -> list[StopRule]:
    """Flare's fixed number of rounds; the budget cap and early stop when they are set."""
    rules: list[StopRule] = [IterationLimit(config.iterations)]
    if config.budget_usd is not None:
        rules.append(BudgetCap(config.budget_usd))
    if config.convergence_threshold is not None:
        rules.append(ConvergenceStop(config.convergence_threshold))
    return rules


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
        last_aggregate = self.rounds[-1].aggregate if self.rounds else None
        return Transcript(
            id=self.id,
            created_at=self.created_at,
            config=self.config.model_dump(mode="json"),
            conversation=self.conversation,
            rounds=rounds,
            answer=last_aggregate.text if last_aggregate else "",
            stop_reason=stop_reason,
            usage=sum((record.usage for record in rounds), Usage()),
            duration_s=time.perf_counter() - self.started,
        )


def _aggregator_failure(aggregate: CallRecord | None) -> str:
    if aggregate is None or aggregate.error is None:
        return "the aggregator produced no consensus"
    error = aggregate.error
    return f"the aggregator {aggregate.model} failed: {error.type}: {error.message}"
