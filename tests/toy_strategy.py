"""A strategy of one's own, in one module and nothing else: `toy` asks only the first member
and writes its answer behind a `prefix`. Importing this module registers it."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from pydantic import Field

from conclave.config import StrategyOptions
from conclave.consensus.events import AggregateFinished
from conclave.consensus.panel import Member
from conclave.consensus.steps import CombinerEvent, IterationLimit, Steps, ThisRound
from conclave.consensus.strategies import Strategy, StrategyContext, register_strategy
from conclave.consensus.transcript import CallRecord, RoundRecord
from conclave.types import Message


class ToyOptions(StrategyOptions):
    prefix: str = "toy"
    rounds: int = Field(default=1, ge=1, le=3)


class FirstMemberOnly:
    def select(
        self,
        round_index: int,
        members: tuple[Member, ...],
        history: Sequence[RoundRecord],
        conversation: Sequence[Message],
    ) -> tuple[Member, ...]:
        return members[:1]


class AsIs:
    def messages(
        self, conversation: Sequence[Message], history: Sequence[RoundRecord]
    ) -> tuple[Message, ...]:
        return tuple(conversation)


class Prefixed:
    def __init__(self, prefix: str) -> None:
        self._prefix = prefix

    async def combine(
        self,
        round_index: int,
        conversation: Sequence[Message],
        candidates: Sequence[CallRecord],
        *,
        stream: bool,
    ) -> AsyncGenerator[CombinerEvent, None]:
        text = f"{self._prefix}: {candidates[0].text}"
        record = CallRecord(model="toy", role="aggregator", text=text)
        yield AggregateFinished(round=round_index, response=record)


def toy_steps(options: ToyOptions, context: StrategyContext) -> Steps:
    return Steps(
        selector=FirstMemberOnly(),
        prompt=AsIs(),
        pool=ThisRound(),
        combiner=Prefixed(options.prefix),
        stop_rules=(IterationLimit(options.rounds - 1),),
        meter=context.meter(context.panel.members),
        max_rounds=options.rounds,
    )


TOY = register_strategy(
    Strategy(
        name="toy",
        summary="the first member's answer, behind a prefix",
        options_type=ToyOptions,
        build=toy_steps,
        falls_back=False,
    )
)
