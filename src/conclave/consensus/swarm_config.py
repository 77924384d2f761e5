"""The swarm strategy's options block: its agents, the limits of its plans and steps, and the
worked examples its orchestrator plans after; and the agents chosen for the embedded models.

In a config, the block is the `strategy_options` of `"strategy": "swarm"`. The orchestrator is
the config's aggregator (Flare's central model): it plans and writes the final answer. Each
agent names the config's models that answer for it (by id or label), so that a step is
answered by one model or by a panel reaching its own consensus with a strategy:

```json
{"models": [{"id": "local:qwen2.5-1.5b", "temperature": 0}, {"id": "local:qwen2.5-0.5b"}],
 "aggregator": [{"model": {"id": "local:qwen2.5-1.5b", "temperature": 0}}],
 "strategy": "swarm",
 "strategy_options": {
   "agents": [
     {"name": "math", "description": "arithmetic and word problems",
      "role": "You solve math problems step by step ...", "models": ["local:qwen2.5-1.5b"]},
     {"name": "facts", "description": "short facts", "role": "You answer briefly.",
      "models": ["local:qwen2.5-1.5b", "local:qwen2.5-0.5b"], "strategy": "vote"}],
   "max_steps": 6, "max_parallel": 4, "budget_tokens": 20000}}
```

With no agents given, the embedded preset gets `embedded_agents()` and any other config one
agent, `assistant`, answered by all its models with `flare`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field, JsonValue, ValidationError, field_validator, model_validator

from conclave.config import StrategyOptions, strategy_options_type
from conclave.consensus.planning import Plan, PlanLimits, PlanStep
from conclave.consensus.swarm_prompts import PlanExample
from conclave.presets import embedded_config
from conclave.types import Frozen

SWARM = "swarm"


class AgentSpec(Frozen):
    """A specialised agent: what the orchestrator is told it does, its role (its system
    prompt), and who answers for it."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
    description: str = Field(min_length=1)
    """What the orchestrator is told the agent does, in one line."""
    role: str = Field(min_length=1)
    """The agent's instructions: its system prompt, repeated after each step it is given."""
    models: tuple[str, ...] = ()
    """The config's models that answer for it, by id or label; every model when empty."""
    strategy: str = "vote"
    """How its models agree when there are several (any strategy but `swarm`)."""
    strategy_options: dict[str, JsonValue] = Field(default_factory=dict)
    iterations: int = Field(default=0, ge=0, le=5)
    """Improvement rounds of its own consensus."""
    max_tokens: int | None = Field(default=None, gt=0)
    """Replaces its models' max_tokens (room to reason, or a short answer)."""
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)

    @field_validator("strategy")
    @classmethod
    def _not_a_swarm(cls, value: str) -> str:
        if value == SWARM:
            raise ValueError("an agent's models cannot themselves be a swarm; choose another")
        strategy_options_type(value)
        return value

    @model_validator(mode="after")
    def _options_fit_strategy(self) -> AgentSpec:
        try:
            strategy_options_type(self.strategy).model_validate(self.strategy_options)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise ValueError(f"strategy_options of {self.strategy!r}: {problems}") from None
        return self


class SwarmOptions(StrategyOptions):
    """`swarm`: the orchestrator (the aggregator) plans steps for `agents` under a JSON
    schema, the steps run in parallel as their dependencies allow, and it writes the answer."""

    agents: tuple[AgentSpec, ...] = ()
    """The agents; empty: chosen for the config (see the module's account)."""
    fallback_agent: str | None = None
    """The agent given the whole task when no valid plan comes; the first agent by default."""
    max_steps: int = Field(default=6, ge=1, le=16)
    max_depth: int = Field(default=4, ge=1, le=16)
    """The longest chain of steps each waiting for the one before."""
    max_parallel: int = Field(default=4, ge=1, le=32)
    """Steps running at once at most."""
    budget_tokens: int | None = Field(default=None, gt=0)
    """No new step starts once the run has used this many tokens (the config's `budget_usd`
    counts the same way)."""
    repair_attempts: int = Field(default=1, ge=0, le=3)
    """Times the orchestrator is asked to repair a plan that cannot be used."""
    examples: tuple[PlanExample, ...] = ()
    """Tasks with the plans to make of them, shown to the orchestrator before the task."""

    @model_validator(mode="after")
    def _names_fit(self) -> SwarmOptions:
        names = [agent.name for agent in self.agents]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"agent names must differ; {', '.join(repeated)} repeats")
        if self.agents and self.fallback_agent is not None and self.fallback_agent not in names:
            raise ValueError(
                f"fallback_agent {self.fallback_agent!r} is not an agent ({', '.join(names)})"
            )
        for example in self.examples:
            unknown = {step.agent for step in example.plan.steps} - set(names)
            if self.agents and unknown:
                raise ValueError(
                    f"an example plan names agents that do not exist: {', '.join(sorted(unknown))}"
                )
        if self.max_depth > self.max_steps:
            raise ValueError(
                f"max_depth {self.max_depth} exceeds max_steps {self.max_steps}; "
                "a plan cannot chain more steps than it has"
            )
        return self

    @property
    def limits(self) -> PlanLimits:
        return PlanLimits(max_steps=self.max_steps, max_depth=self.max_depth)

    def with_agents(self, agents: tuple[AgentSpec, ...], **changes: Any) -> SwarmOptions:
        """These options for `agents` (and other fields changed), validated."""
        data = {**self.model_dump(), "agents": [a.model_dump() for a in agents], **changes}
        return SwarmOptions.model_validate(data)


EMBEDDED_SWARM_MODEL = "local:qwen2.5-1.5b"
"""The embedded pack that orchestrates and answers first in every agent: the strongest, and
the only one that plans and reasons reliably (the 0.5B and 135M do not)."""

EMBEDDED_STEP_STRATEGY = "adaptive"
"""How each embedded agent reaches its step's answer: the embedded preset's own strategy, with
its options. A plan turns a composite task into short questions, where its sure answers,
reasoning draws and weighted votes work; on the whole task they do not (a several-part answer
stops at the first call)."""


def embedded_agents(packs: Sequence[str]) -> tuple[AgentSpec, ...]:
    """The agents of the embedded swarm, answering with `packs` (the config's models, the
    1.5B first): `math` works numbers out step by step, on the 1.5B alone (the small models
    cannot); `knowledge` answers facts and multiple-choice questions with every pack."""
    options = embedded_config().strategy_options
    return (
        AgentSpec(
            name="math",
            description="arithmetic and math word problems: works the numbers out.",
            role=(
                "You solve arithmetic and math word problems. Work it out step by step in a "
                'few short lines, then write the result on the last line as "Answer: <number>".'
            ),
            models=(EMBEDDED_SWARM_MODEL,),
            strategy=EMBEDDED_STEP_STRATEGY,
            strategy_options=options,
            max_tokens=400,
        ),
        AgentSpec(
            name="knowledge",
            description=(
                "facts (capitals, chemical elements, names, dates) and multiple-choice "
                "questions on any subject."
            ),
            role=(
                "Answer with the answer only: the fact in a few words, or the letter of the "
                "best option."
            ),
            models=tuple(packs),
            strategy=EMBEDDED_STEP_STRATEGY,
            strategy_options=options,
            max_tokens=64,
        ),
    )


def embedded_examples() -> tuple[PlanExample, ...]:
    """Worked examples for the embedded orchestrator: without them a 1.5B model paraphrased
    the task's parts into its instructions, dropping options and numbers, or answered them
    itself. Their questions are made up, in no data set."""
    return (
        PlanExample(
            task=_parts(
                ("Which gas do plants take in from the air to make their food?", "letter"),
                ("Who painted the Mona Lisa?", "text"),
                options="A. Oxygen\nB. Carbon dioxide\nC. Nitrogen\nD. Helium",
            ),
            plan=_plan(
                (
                    "knowledge",
                    "Which gas do plants take in from the air to make their food?\nA. Oxygen\n"
                    "B. Carbon dioxide\nC. Nitrogen\nD. Helium",
                    (),
                ),
                ("knowledge", "Who painted the Mona Lisa?", ()),
            ),
        ),
        PlanExample(
            task=_parts(
                ("A spider has 8 legs. How many legs do 3 spiders have?", "number"),
                ("In which country is the city of Kyoto?", "text"),
                ("Add 10 to the answer to part 1.", "number"),
            ),
            plan=_plan(
                ("math", "A spider has 8 legs. How many legs do 3 spiders have?", ()),
                ("knowledge", "In which country is the city of Kyoto?", ()),
                ("math", "Add 10 to the result of step 1.", (1,)),
            ),
        ),
        PlanExample(
            task=_parts(
                ("What is 12 + 30?", "number"),
                ("Who wrote the play Romeo and Juliet?", "text"),
                ("How many years are there in 3 decades?", "number"),
                ("Which country was the author in the answer to part 2 from?", "text"),
            ),
            plan=_plan(
                ("math", "What is 12 + 30?", ()),
                ("knowledge", "Who wrote the play Romeo and Juliet?", ()),
                ("math", "How many years are there in 3 decades?", ()),
                ("knowledge", "Which country was the author in the result of step 2 from?", (2,)),
            ),
        ),
    )


def embedded_swarm_options(options: SwarmOptions, packs: Sequence[str]) -> SwarmOptions:
    """`options` with the embedded agents (answering with `packs`) and examples where it
    names none."""
    examples = options.examples or embedded_examples()
    return options.with_agents(embedded_agents(packs), examples=[e.model_dump() for e in examples])


_FORMS = {"letter": "<letter>", "number": "<number>", "text": "<a few words>"}


def _parts(*questions: tuple[str, str], options: str = "") -> str:
    """A task of numbered questions as `conclave eval` asks one (the first question's
    `options`, if any, under it), each `(question, form)`."""
    listed = []
    for number, (question, _) in enumerate(questions, start=1):
        listed.append(
            f"{number}. {question}" + (f"\n\n{options}" if number == 1 and options else "")
        )
    forms = "\n".join(f"{n}. {_FORMS[form]}" for n, (_, form) in enumerate(questions, start=1))
    header = f"This task has {len(questions)} parts. Answer every part."
    return "\n\n".join([header, *listed, f"Reply in the form:\n{forms}"])


def _plan(*steps: tuple[str, str, tuple[int, ...]]) -> Plan:
    return Plan(
        steps=tuple(
            PlanStep(id=number, agent=agent, instruction=instruction, depends_on=needs)
            for number, (agent, instruction, needs) in enumerate(steps, start=1)
        )
    )
