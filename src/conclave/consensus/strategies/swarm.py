"""`swarm`: an orchestrator splits the task among specialised agents, their steps run in
parallel where the plan allows, and the orchestrator writes the answer from their results.

One round that asks no panel member: its combiner does the work, as steps of the engine.

1. **Plan.** The orchestrator (the config's aggregator) is asked for a plan under its JSON
   schema (`consensus.planning`): grammar decoding on the embedded models, `response_format`
   on OpenAI-compatible servers, so what comes back is a valid plan. It is read and checked
   anyway (a server may ignore the schema, and the schema leaves the depth to the check); a
   plan that cannot be used is sent back with its problems named, `repair_attempts` times,
   and then replaced by one step giving the whole task to the fallback agent. The record
   says which happened.
2. **Steps.** Each step is a consensus of its own: the agent's models, through the same
   engine (nested: `StrategyContext.nested`), on the step's request (the agent's role, the
   results it depends on, its instruction). Steps start as soon as their
   dependencies are done (`consensus.scheduling`), at most `max_parallel` at once, and none
   once the budget is spent; a failed step is reported and its dependants told.
3. **Answer.** The orchestrator writes the final answer from the task and the steps'
   results, streamed like any aggregate; the fallback aggregator, if configured, writes it
   when the orchestrator fails.

Everything goes through the one event stream: `StepProgress` events (step "swarm") for the plan
(with the plan as its typed report), each step's start, each call of its members and its end;
then the answer's `AggregateDelta`/`AggregateFinished`, whose `SwarmReport` record keeps the
plan, every step's result and every call.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from conclave.config import ConsensusConfig
from conclave.consensus.calls import ModelCalls
from conclave.consensus.events import (
    AggregateFinished,
    ConsensusDone,
    MemberAnswered,
    MemberFailed,
    StepProgress,
)
from conclave.consensus.panel import Member, Panel
from conclave.consensus.planning import (
    Plan,
    PlanStep,
    fallback_plan,
    plan_problems,
    plan_schema,
    read_plan,
    with_named_dependencies,
    with_task_text,
)
from conclave.consensus.scheduling import StepEvent, StepFinished, StepLimits, run_steps
from conclave.consensus.steps import (
    Combiner,
    CombinerEvent,
    IterationLimit,
    NestedConsensus,
    Steps,
    ThisRound,
    WithFallbacks,
    written_consensus,
)
from conclave.consensus.strategies.registry import Strategy, StrategyContext, register_strategy
from conclave.consensus.swarm_config import SWARM, AgentSpec, SwarmOptions, embedded_swarm_options
from conclave.consensus.swarm_prompts import (
    AgentBrief,
    planning_messages,
    repair_messages,
    result_text,
    step_messages,
    synthesis_messages,
    task_text,
)
from conclave.consensus.swarm_report import PlanRecord, StepResult, SwarmReport
from conclave.consensus.transcript import (
    CallRecord,
    DecidedBy,
    RoundRecord,
    StepRecord,
    Transcript,
    standalone_call,
)
from conclave.errors import ConfigError, ConsensusError
from conclave.presets import EMBEDDED_PRESET
from conclave.types import Message, Usage

STEP = "swarm"
"""The name of the swarm's step in events and transcripts."""

PLAN_TOKENS_PER_STEP = 80
"""Room the orchestrator gets per planned step (its own max_tokens if larger)."""

GENERIC_AGENT = AgentSpec(
    name="assistant",
    description="any step: it answers what the instruction asks.",
    role="You are a careful assistant. Do what the instruction asks, correctly and briefly.",
    strategy="flare",
)
"""The agent of a config that names none (and is not the embedded preset): all its models,
their answers combined by the aggregator."""


@dataclass(frozen=True)
class Agent:
    """An agent as a run uses it: its spec, who answers for it, and its own consensus."""

    spec: AgentSpec
    members: tuple[str, ...]
    consensus: NestedConsensus


class NoMembers:
    """The swarm's round asks no panel member: its combiner does the work."""

    def select(
        self,
        round_index: int,
        members: tuple[Member, ...],
        history: Sequence[RoundRecord],
        conversation: Sequence[Message],
    ) -> tuple[Member, ...]:
        return ()


class Conversation:
    """The round is given the conversation as it is."""

    def messages(
        self, conversation: Sequence[Message], history: Sequence[RoundRecord]
    ) -> tuple[Message, ...]:
        return tuple(conversation)


def swarm_options_for(options: SwarmOptions, config: ConsensusConfig) -> SwarmOptions:
    """The options a run uses: as given when they name agents; else the embedded agents for
    the embedded preset, and one generic agent for any other config."""
    if options.agents:
        return options
    if config.name == EMBEDDED_PRESET:
        return embedded_swarm_options(options, [spec.id for spec in config.models])
    return options.with_agents((GENERIC_AGENT,))


def swarm_steps(options: SwarmOptions, context: StrategyContext) -> Steps:
    options = swarm_options_for(options, context.config)
    agents = {spec.name: _agent(spec, context) for spec in options.agents}
    combiner = SwarmCombiner(options, agents, context)
    return Steps(
        selector=NoMembers(),
        prompt=Conversation(),
        pool=ThisRound(),
        combiner=combiner,
        stop_rules=(IterationLimit(0),),
        meter=context.meter(context.panel.members),
        max_rounds=1,
    )


def _agent(spec: AgentSpec, context: StrategyContext) -> Agent:
    """The agent's models (the config's, as the agent samples them) and its own consensus,
    which the engine runs nested in this one (sharing the run's breakers)."""
    chosen = _chosen_members(spec, context.panel.members)
    changes: dict[str, object] = {}
    if spec.max_tokens is not None:
        changes["max_tokens"] = spec.max_tokens
    if spec.temperature is not None:
        changes["temperature"] = spec.temperature
    members = tuple(member.variant(f"{spec.name}: {member.label}", **changes) for member in chosen)
    parent = context.config
    config = parent.with_changes(
        name=f"{parent.name}/{spec.name}",
        models=[member.spec.model_dump(mode="json") for member in members],
        strategy=spec.strategy,
        strategy_options=spec.strategy_options,
        iterations=spec.iterations,
        quorum=1,
        budget_usd=None,
    )
    aggregator = context.panel.aggregator
    panel = Panel(
        members=members,
        aggregator=aggregator.variant(f"{spec.name}: {aggregator.label}"),
        fallback=context.panel.fallback,
    )
    if context.nested is None:
        raise ConfigError("the swarm strategy runs inside the consensus engine only")
    members_labels = tuple(member.label for member in members)
    return Agent(spec=spec, members=members_labels, consensus=context.nested(config, panel))


def _chosen_members(spec: AgentSpec, members: Sequence[Member]) -> tuple[Member, ...]:
    if not spec.models:
        return tuple(members)
    chosen: list[Member] = []
    for wanted in spec.models:
        found = [m for m in members if wanted in (m.label, m.spec.id)]
        if not found:
            known = ", ".join(dict.fromkeys(m.spec.id for m in members))
            raise ConfigError(
                f"swarm agent {spec.name!r}: no model {wanted!r} in the config's models "
                f"({known}); an agent's models are named by id or label"
            )
        chosen.append(found[0])
    return tuple(dict.fromkeys(chosen))


class SwarmCombiner:
    """The swarm's round: plan, steps, answer (see the module's account)."""

    def __init__(
        self, options: SwarmOptions, agents: Mapping[str, Agent], context: StrategyContext
    ) -> None:
        self._options = options
        self._agents = agents
        self._calls: ModelCalls = context.calls
        self._config = context.config
        self._orchestrator = context.panel.aggregator
        self._fallback = context.panel.fallback
        self._limits = options.limits
        self._schema = plan_schema(list(agents), self._limits)
        self._briefs = tuple(AgentBrief(a.spec.name, a.spec.description) for a in agents.values())

    async def combine(
        self,
        round_index: int,
        conversation: Sequence[Message],
        candidates: Sequence[CallRecord],
        *,
        stream: bool,
    ) -> AsyncGenerator[CombinerEvent, None]:
        run = _SwarmRun(round_index)
        async with aclosing(self._plan(run, conversation)) as planning:
            async for event in planning:
                yield event
        async with aclosing(self._steps(run)) as stepping:
            async for event in stepping:
                yield event
        record = run.record()
        writer = self._writer(run.results())
        async with aclosing(writer.combine(round_index, conversation, (), stream=stream)) as it:
            async for event in it:
                if isinstance(event, AggregateFinished):
                    event = event.model_copy(update={"steps": (*event.steps, record)})
                yield event

    async def _plan(
        self, run: _SwarmRun, conversation: Sequence[Message]
    ) -> AsyncGenerator[CombinerEvent, None]:
        """Ask for a plan, repair it while it cannot be used, else fall back to one step."""
        planner = self._orchestrator.constrained(self._schema)
        room = max(planner.spec.max_tokens, PLAN_TOKENS_PER_STEP * self._limits.max_steps)
        planner = planner.variant(f"{self._orchestrator.label} (planner)", max_tokens=room)
        examples = self._options.examples
        asked = planning_messages(self._briefs, conversation, self._limits, examples)
        problems: list[tuple[str, ...]] = []
        reading = _Reading()
        for attempt in range(self._options.repair_attempts + 1):
            call = await self._calls.ask(planner, "step", asked)
            run.calls.append(call)
            reading = self._read(call, task_text(conversation))
            if reading.plan is not None:
                break
            problems.append(reading.problems)
            shown = "; ".join(reading.problems)
            message = f"plan {attempt + 1} cannot be used: {shown}"
            yield run.progress("plan", "failed", message, call=call)
            if not call.ok:
                break  # the orchestrator failed: a repair request would fail the same way
            asked = repair_messages(asked, call.text, reading.problems)
        if reading.plan is None:
            fallback = self._options.fallback_agent or next(iter(self._agents))
            plan, source = fallback_plan(task_text(conversation), fallback), "fallback"
        else:
            plan, source = reading.plan, "first" if not problems else "repaired"
        run.plan = PlanRecord(
            plan=plan,
            source=source,
            problems=tuple(problems),
            notes=reading.notes if reading.plan is not None else (),
            limits=self._limits,
        )
        yield run.progress(
            "plan",
            "finished",
            _plan_summary(run.plan),
            call=run.calls[-1] if source != "fallback" else None,
            report=run.report(),
        )

    def _read(self, call: CallRecord, task: str) -> _Reading:
        """The plan a planning call wrote, its instructions restored from the task's own text
        where they copy it and with the dependencies they name; or why it cannot be used."""
        if not call.ok:
            why = call.error.message if call.error else "no answer"
            return _Reading(problems=(f"the call failed: {why}",))
        agents = list(self._agents)
        found = read_plan(call.text, agents, self._limits)
        if not isinstance(found, Plan):
            return _Reading(problems=found)
        copied, restored = with_task_text(found, task)
        plan, named = with_named_dependencies(copied)
        problems = plan_problems(plan, agents, self._limits)
        notes = (*restored, *named)
        return _Reading(plan=None if problems else plan, problems=problems, notes=notes)

    async def _steps(self, run: _SwarmRun) -> AsyncGenerator[CombinerEvent, None]:
        """Run the plan's steps; report each start, member call and end."""
        assert run.plan is not None
        limits = StepLimits(
            max_parallel=self._options.max_parallel,
            budget_tokens=self._options.budget_tokens,
            budget_usd=self._config.budget_usd,
        )

        def run_step(
            step: PlanStep, inputs: Mapping[int, StepResult]
        ) -> AsyncGenerator[StepEvent, None]:
            return self._step(run, step, inputs)

        spent = sum((call.usage for call in run.calls), Usage())
        async with aclosing(run_steps(run.plan.plan, run_step, limits, spent_before=spent)) as it:
            async for event in it:
                if isinstance(event, StepFinished):
                    run.finished(event.result)
                    yield run.step_progress(event.result)
                else:
                    yield event

    async def _step(
        self, run: _SwarmRun, step: PlanStep, inputs: Mapping[int, StepResult]
    ) -> AsyncGenerator[StepEvent, None]:
        """One step: its agent's own consensus on the step's request."""
        agent = self._agents[step.agent]
        needs = f" (using step {', '.join(map(str, step.depends_on))})" if step.depends_on else ""
        yield run.progress(
            f"step {step.id}", "started", f"{agent.spec.name}: {step.instruction}{needs}"
        )
        asked = step_messages(agent.spec.role, step, inputs)
        transcript: Transcript | None = None
        error: str | None = None
        try:
            running = agent.consensus.run(asked, stream_aggregate=False)
            async with aclosing(running) as events:
                async for event in events:
                    if isinstance(event, MemberAnswered | MemberFailed):
                        call = standalone_call(event.response, asked, f"step {step.id}")
                        yield run.progress(f"step {step.id}", "note", call=call)
                    elif isinstance(event, ConsensusDone):
                        transcript = event.transcript
        except ConsensusError as exc:
            transcript, error = exc.transcript, str(exc)
        calls = transcript.standalone_calls(f"step {step.id}") if transcript else ()
        run.step_calls[step.id] = calls
        usage = sum((call.usage for call in calls), Usage())
        if transcript is None or error is not None:
            result = StepResult(
                step=step, status="failed", error=error, members=agent.members, usage=usage
            )
        else:
            result = StepResult(
                step=step,
                status="done",
                output=transcript.answer,
                members=agent.members,
                usage=usage,
            )
        yield StepFinished(result=result)

    def _writer(self, results: Sequence[StepResult]) -> WithFallbacks:
        """The orchestrator writing the answer, then the fallback aggregator if configured."""
        primary = Synthesis(self._orchestrator, results, self._calls)
        fallbacks: list[tuple[Combiner, DecidedBy]] = []
        if self._fallback is not None:
            writer = Synthesis(self._fallback, results, self._calls)
            fallbacks.append((writer, "fallback_aggregator"))
        return WithFallbacks(primary, fallbacks)


@dataclass(frozen=True)
class _Reading:
    """What a planning call gave: a plan to use, or the problems that make it unusable."""

    plan: Plan | None = None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class Synthesis:
    """One model writing the final answer from the task and the steps' results."""

    def __init__(self, writer: Member, results: Sequence[StepResult], calls: ModelCalls) -> None:
        self._writer = writer
        self._results = results
        self._calls = calls

    async def combine(
        self,
        round_index: int,
        conversation: Sequence[Message],
        candidates: Sequence[CallRecord],
        *,
        stream: bool,
    ) -> AsyncGenerator[CombinerEvent, None]:
        messages = synthesis_messages(conversation, self._results)
        writing = written_consensus(self._calls, self._writer, messages, round_index, stream)
        async with aclosing(writing) as events:
            async for event in events:
                yield event


class _SwarmRun:
    """What one swarm round has gathered so far."""

    def __init__(self, round_index: int) -> None:
        self.round = round_index
        self.started = time.perf_counter()
        self.calls: list[CallRecord] = []
        """The orchestrator's planning calls."""
        self.plan: PlanRecord | None = None
        self.step_calls: dict[int, tuple[CallRecord, ...]] = {}
        self._results: dict[int, StepResult] = {}

    def finished(self, result: StepResult) -> None:
        self._results[result.step.id] = result

    def results(self) -> tuple[StepResult, ...]:
        """The steps' results in plan order."""
        assert self.plan is not None
        return tuple(self._results[s.id] for s in self.plan.plan.steps if s.id in self._results)

    def report(self) -> SwarmReport:
        assert self.plan is not None
        return SwarmReport(plan=self.plan, steps=self.results())

    def record(self) -> StepRecord:
        """The swarm step's record: its report, the planning calls and every step's calls."""
        assert self.plan is not None
        steps = (call for s in self.plan.plan.steps for call in self.step_calls.get(s.id, ()))
        return StepRecord(step=STEP, calls=(*self.calls, *steps), report=self.report())

    def progress(
        self,
        name: str,
        status: str,
        message: str = "",
        *,
        call: CallRecord | None = None,
        report: SwarmReport | None = None,
    ) -> StepProgress:
        return StepProgress.model_validate(
            {
                "step": STEP,
                "round": self.round,
                "name": name,
                "status": status,
                "message": message,
                "call": call,
                "report": report,
            }
        )

    def step_progress(self, result: StepResult) -> StepProgress:
        """A step's end, with the report as it now stands."""
        if result.ok:
            status, message = "finished", result_text(result)
        else:
            status, message = "failed", f"{result.status}: {result.error or 'no result'}"
        return self.progress(f"step {result.step.id}", status, message, report=self.report())


def _plan_summary(record: PlanRecord) -> str:
    steps = record.plan.steps
    how = {
        "first": "",
        "repaired": " (after a repair)",
        "fallback": " (the fallback: no valid plan came)",
    }
    listed = "; ".join(
        f"{s.id} {s.agent}" + (f" after {','.join(map(str, s.depends_on))}" if s.depends_on else "")
        for s in steps
    )
    return f"{len(steps)} step{'s' if len(steps) != 1 else ''}{how[record.source]}: {listed}"


def swarm_report(transcript: Transcript) -> SwarmReport | None:
    """The report of a run's swarm step (None for a run with no swarm)."""
    for record in transcript.rounds:
        for step in record.steps:
            if isinstance(step.report, SwarmReport):
                return step.report
    return None


SWARM_STRATEGY = register_strategy(
    Strategy(
        name=SWARM,
        summary=(
            "an orchestrator plans steps for specialised agents, the steps run in parallel, "
            "each a consensus of its own, and the orchestrator writes the answer"
        ),
        options_type=SwarmOptions,
        build=swarm_steps,
        falls_back=False,
    )
)
