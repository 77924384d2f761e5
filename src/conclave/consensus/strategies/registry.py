"""The one list of strategies, and the one place that turns a config into the engine's steps.

A strategy is a name, a one-line summary, a typed options model and a function building its
`Steps` from those options and a `StrategyContext`. `register_strategy` adds one (a module
calls it once, at import); the config's validation, the CLI's `--strategy` choices, the
server's presets and the docs read `strategy_names()` / `registered_strategies()`.

`build_steps` adds what every strategy has around its own steps: when the strategy's combiner
calls a model (`falls_back`), the fallback aggregator and then a vote write the consensus if
it fails; and the steps of every registered extension the config turns on (grounding before
the first round, checks after the final consensus), built by `register_extension`'s builders.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic

from conclave.config import (
    ConsensusConfig,
    OptionsT,
    declare_strategy_options,
)
from conclave.consensus.agreement import AgreementMeter, Similarity
from conclave.consensus.calls import ModelCalls
from conclave.consensus.embeddings import default_similarity
from conclave.consensus.forms import AnswerInForm
from conclave.consensus.panel import Member, Panel
from conclave.consensus.steps import (
    AnswerStep,
    BudgetCap,
    Combiner,
    ConsensusPrompt,
    ConvergenceStop,
    ConversationStep,
    IterationLimit,
    LLMAggregator,
    MemberSelector,
    NestedRuns,
    Steps,
    StopRule,
    ThisRound,
    VoteCombiner,
    WithFallbacks,
)
from conclave.consensus.transcript import DecidedBy
from conclave.errors import ConfigError


@dataclass(frozen=True)
class StrategyContext:
    """What a strategy builds its steps from: the run-wide config, the panel, the run's
    randomness and the similarity its agreement meter uses; and the common parts strategies
    share, built the same way for each."""

    config: ConsensusConfig
    panel: Panel
    calls: ModelCalls
    """The one path of the run's model calls: every step that calls a model uses it."""
    rng: random.Random
    similarity: Similarity
    nested: NestedRuns | None = None
    """Runs a consensus inside this one (a swarm's steps); given by the engine."""

    def meter(self, members: Sequence[Member]) -> AgreementMeter:
        """An agreement meter weighing `members` by their configured weights."""
        weights = {member.label: member.spec.weight for member in members}
        return AgreementMeter(weights, self.similarity)

    def aggregator(self) -> LLMAggregator:
        """The configured aggregator, writing from the candidates."""
        spec = self.config.aggregator_spec
        return LLMAggregator(self.panel.aggregator, spec, calls=self.calls, rng=self.rng)

    def improvement_prompt(self, *, show_answers: bool) -> ConsensusPrompt:
        """Flare's improvement round, with every last answer shown when `show_answers`."""
        return ConsensusPrompt(
            self.config.aggregated_prompt_type,
            self.config.improvement_prompt,
            show_answers=show_answers,
            rng=self.rng,
        )

    def budget(self) -> tuple[StopRule, ...]:
        """The budget cap, when the config sets one."""
        budget_usd = self.config.budget_usd
        return (BudgetCap(budget_usd),) if budget_usd is not None else ()

    def improvement_rounds(
        self,
        selector: MemberSelector,
        combiner: Combiner,
        meter: AgreementMeter,
        *,
        show_answers: bool,
        stop_rules: tuple[StopRule, ...] = (),
    ) -> Steps:
        """The steps of a strategy with Flare's improvement rounds: each round combines its
        own answers, and the run stops after `iterations` improvement rounds, at the budget,
        on `convergence_threshold` when set, or on one of `stop_rules`."""
        threshold = self.config.convergence_threshold
        converged = (ConvergenceStop(threshold),) if threshold is not None else ()
        limits = (IterationLimit(self.config.iterations), *self.budget(), *converged)
        return Steps(
            selector=selector,
            prompt=self.improvement_prompt(show_answers=show_answers),
            pool=ThisRound(),
            combiner=combiner,
            stop_rules=(*limits, *stop_rules),
            meter=meter,
            max_rounds=self.config.iterations + 1,
        )


@dataclass(frozen=True)
class Strategy(Generic[OptionsT]):
    """A named way to reach a consensus: `build` makes its steps from its typed options.

    `falls_back`: its combiner calls a model, which may fail; the fallback aggregator (if
    configured) and then a vote of the answers write the consensus instead. A strategy whose
    combiner is itself a vote has nothing to fall back to.
    """

    name: str
    summary: str
    options_type: type[OptionsT]
    build: Callable[[OptionsT, StrategyContext], Steps]
    falls_back: bool = True

    def steps(self, context: StrategyContext) -> Steps:
        """This strategy's own steps for `context`, from the config's options block."""
        return self.build(context.config.options_as(self.options_type), context)


@dataclass(frozen=True)
class Extension:
    """Steps an extension puts around any strategy's rounds."""

    before: tuple[ConversationStep, ...] = ()
    after: tuple[AnswerStep, ...] = ()


ExtensionBuilder = Callable[[StrategyContext], Extension]
"""Builds an extension's steps for a run; returns an empty Extension when the config does not
turn it on."""


@dataclass
class _Registry:
    strategies: dict[str, Strategy[Any]] = field(default_factory=dict)
    extensions: dict[str, ExtensionBuilder] = field(default_factory=dict)


_REGISTRY = _Registry()


def register_strategy(strategy: Strategy[OptionsT], *, replace: bool = False) -> Strategy[OptionsT]:
    """Make `strategy` available by its name to configs, the CLI, the server and the docs.

    Registering another strategy under a name already taken is a mistake (ValueError) unless
    `replace`; registering the same strategy again does nothing.
    """
    known = _REGISTRY.strategies.get(strategy.name)
    if known is not None and known is not strategy and not replace:
        raise ValueError(f"a strategy named {strategy.name!r} is already registered")
    _REGISTRY.strategies[strategy.name] = strategy
    declare_strategy_options(strategy.name, strategy.options_type)
    return strategy


def get_strategy(name: str) -> Strategy[Any]:
    """The strategy registered as `name`; ConfigError naming the choices if there is none."""
    strategy = _REGISTRY.strategies.get(name)
    if strategy is None:
        raise ConfigError(
            f"unknown strategy {name!r}; choose one of: {', '.join(strategy_names())}"
        )
    return strategy


def strategy_names() -> tuple[str, ...]:
    """Every registered strategy's name, in the order registered (the built-in ones first)."""
    return tuple(_REGISTRY.strategies)


def registered_strategies() -> tuple[Strategy[Any], ...]:
    """Every registered strategy, in the order registered."""
    return tuple(_REGISTRY.strategies.values())


def register_extension(name: str, builder: ExtensionBuilder) -> None:
    """Add `builder`'s steps around every strategy's rounds (when the config turns them on)."""
    _REGISTRY.extensions[name] = builder


def build_steps(
    config: ConsensusConfig,
    panel: Panel,
    *,
    calls: ModelCalls,
    rng: random.Random,
    similarity: Similarity | None = None,
    nested: NestedRuns | None = None,
) -> Steps:
    """The steps of `config.strategy` for this panel, calling models through `calls` (and
    running nested consensus through `nested`), with its fallbacks and the steps of every
    extension the config turns on."""
    strategy = get_strategy(config.strategy)
    context = StrategyContext(config, panel, calls, rng, similarity or default_similarity(), nested)
    steps = strategy.steps(context)
    combiner = steps.combiner
    if strategy.falls_back:
        combiner = _with_fallbacks(context, combiner, VoteCombiner(steps.meter))
    extensions = [build(context) for build in _REGISTRY.extensions.values()]
    return dataclasses.replace(
        steps,
        combiner=combiner,
        before=(*steps.before, *(step for ext in extensions for step in ext.before)),
        after=(
            *steps.after,
            *(step for ext in extensions for step in ext.after),
            AnswerInForm(steps.meter),  # last: the answer in the form asked, after any check
        ),
    )


def _with_fallbacks(context: StrategyContext, combiner: Combiner, vote: VoteCombiner) -> Combiner:
    """`combiner`, then the fallback aggregator (if configured), then a vote of the answers."""
    fallbacks: list[tuple[Combiner, DecidedBy]] = []
    fallback = context.panel.fallback
    if fallback is not None:
        spec = context.config.aggregator_spec.model_copy(update={"model": fallback.spec})
        aggregator = LLMAggregator(fallback, spec, calls=context.calls, rng=context.rng)
        fallbacks.append((aggregator, "fallback_aggregator"))
    fallbacks.append((vote, "fallback_vote"))
    return WithFallbacks(combiner, fallbacks)
