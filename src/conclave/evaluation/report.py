"""The evaluation report: per set-up and data set (and all sets together), accuracy with its
95% Wilson interval, the paired comparison with the best member alone, tokens, cost and time
per question; and each member's measured accuracy, which a config can carry as its `weight`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from pydantic import Field

from conclave.evaluation.dataset import Dataset
from conclave.evaluation.evaluate import RowResult
from conclave.evaluation.grounded_report import GroundedScore, grounded_scores
from conclave.evaluation.setups import Setup, SetupKind
from conclave.evaluation.stats import compare_paired, wilson_interval
from conclave.types import Frozen

ALL_SETS = "all"


class Paired(Frozen):
    """A set-up against the best member alone, on the rows both answered."""

    against: str
    rows: int
    wins: int
    losses: int
    difference: float
    """Accuracy difference (0.05 = 5 points), positive when this set-up is better."""
    p_value: float
    """Exact two-sided sign test (McNemar) on the wins and losses."""


class SetupScore(Frozen):
    """One set-up on one data set."""

    setup: str
    kind: SetupKind
    dataset: str
    rows: int
    correct: int
    errors: int
    accuracy: float
    ci_low: float
    ci_high: float
    tokens_per_question: float
    cost_usd: float | None
    """Total cost, when the providers report it (None when none did)."""
    wall_s_per_question: float
    model_s_per_question: float
    cached_call_share: float
    first_round_share: float = 0.0
    """Questions answered by the run's first round (one call for a member alone, or for
    `adaptive` when its first answer is sure)."""
    in_form_share: float | None = None
    """Of the answers to an instruction that asks for a form (the letter only, the number
    only, a few words, every numbered part), those in that form and nothing more."""
    vs_best_member: Paired | None = None
    part_accuracy: float | None = None
    """For composite rows: the share of their parts answered right."""
    valid_first_plans: float | None = None
    """For a swarm: the share of runs whose first plan could be used."""


class MemberWeight(Frozen):
    """A member's accuracy alone over every row: the `weight` a config may give it."""

    model: str
    setup: str
    accuracy: float
    rows: int


class DatasetInfo(Frozen):
    name: str
    rows: int


class HeldOutScore(Frozen):
    """The choice made without some rows, on those rows."""

    held_out: str
    """The data set left out, a fold ("fold 2 of 5"), or "all" for every row left out."""
    rows: int
    chosen: dict[str, str]
    """The set-up chosen for each kind of question, on the other rows."""
    accuracy: float
    ci_low: float
    ci_high: float
    best_member: str
    best_member_accuracy: float
    vs_best_member: Paired
    model_s_per_question: float
    best_member_model_s_per_question: float
    tokens_per_question: float
    best_member_tokens_per_question: float
    first_round_share: float
    in_form_share: float | None = None

    @property
    def time_ratio(self) -> float:
        """Model seconds per question against the best member's."""
        best = self.best_member_model_s_per_question
        return self.model_s_per_question / best if best else float("inf")


class CrossValidation(Frozen):
    """Every choice made without the rows it is reported on."""

    scheme: str
    time_cap: float | None
    rule: str = "best"
    """How a set-up was chosen per kind (`conclave.evaluation.crossval.ChoiceRule`); a report
    written before the rule was recorded chose by the most right answers."""
    held_out: tuple[HeldOutScore, ...]
    """One per part left out, then "all" pooling every row left out."""
    chosen_on_all: dict[str, str] = Field(default_factory=dict)
    """The set-up the same choice makes on every row, per kind: the one to ship, whose
    left-out numbers are `held_out`'s."""


class Report(Frozen):
    """Everything `conclave eval` found, in one JSON-serialisable value."""

    created_at: datetime
    datasets: tuple[DatasetInfo, ...]
    setups: tuple[str, ...]
    best_member: dict[str, str]
    """The best member alone per data set (and for all sets)."""
    scores: tuple[SetupScore, ...]
    member_weights: tuple[MemberWeight, ...]
    held_out: CrossValidation | None = None
    """The choice among the strategy set-ups made without the rows it is reported on (see
    `conclave.evaluation.crossval`), when asked for."""
    grounded: tuple[GroundedScore, ...] = ()
    """For grounded data sets: abstention, citation recall and precision, per set-up."""

    def score(self, setup: str, dataset: str) -> SetupScore | None:
        for score in self.scores:
            if score.setup == setup and score.dataset == dataset:
                return score
        return None


def build_report(
    datasets: Sequence[Dataset], setups: Sequence[Setup], results: Sequence[RowResult]
) -> Report:
    """Summarise the results of `setups` on `datasets`."""
    names = [d.name for d in datasets]
    groups = [*names, ALL_SETS] if len(names) > 1 else names
    scores: list[SetupScore] = []
    best_member: dict[str, str] = {}
    for group in groups:
        chosen = [r for r in results if group == ALL_SETS or r.dataset == group]
        by_setup = {s.name: [r for r in chosen if r.setup == s.name] for s in setups}
        correct = {
            name: {f"{r.dataset}\x1f{r.row_id}": r.correct for r in rows}
            for name, rows in by_setup.items()
        }
        members = [s for s in setups if s.kind == "member" and by_setup[s.name]]
        best = max(members, key=lambda s: _accuracy(by_setup[s.name]), default=None)
        if best is not None:
            best_member[group] = best.name
        for setup in setups:
            rows = by_setup[setup.name]
            if not rows:
                continue
            paired = None
            if best is not None and setup.name != best.name:
                comparison = compare_paired(correct[setup.name], correct[best.name])
                paired = Paired(
                    against=best.name,
                    rows=comparison.rows,
                    wins=comparison.wins,
                    losses=comparison.losses,
                    difference=comparison.difference,
                    p_value=comparison.p_value,
                )
            scores.append(_score(setup, group, rows, paired))
    return Report(
        created_at=datetime.now(UTC),
        datasets=tuple(DatasetInfo(name=d.name, rows=len(d.rows)) for d in datasets),
        setups=tuple(s.name for s in setups),
        best_member=best_member,
        scores=tuple(scores),
        member_weights=_member_weights(setups, results),
        grounded=grounded_scores(results),
    )


def _score(
    setup: Setup, group: str, rows: Sequence[RowResult], paired: Paired | None
) -> SetupScore:
    count = len(rows)
    correct = sum(r.correct for r in rows)
    low, high = wilson_interval(correct, count)
    costs = [r.cost_usd for r in rows if r.cost_usd is not None]
    calls = sum(r.calls for r in rows)
    formed = [r.in_form for r in rows if r.in_form is not None]
    return SetupScore(
        setup=setup.name,
        kind=setup.kind,
        dataset=group,
        rows=count,
        correct=correct,
        errors=sum(r.error is not None for r in rows),
        accuracy=correct / count,
        ci_low=low,
        ci_high=high,
        tokens_per_question=sum(r.tokens for r in rows) / count,
        cost_usd=sum(costs) if costs else None,
        wall_s_per_question=sum(r.wall_s for r in rows) / count,
        model_s_per_question=sum(r.model_s for r in rows) / count,
        cached_call_share=sum(r.cached_calls for r in rows) / calls if calls else 0.0,
        first_round_share=sum(r.rounds == 1 for r in rows) / count,
        in_form_share=sum(formed) / len(formed) if formed else None,
        vs_best_member=paired,
        part_accuracy=_share(part for r in rows for part in r.parts_correct),
        valid_first_plans=_share(
            r.first_plan_valid for r in rows if r.first_plan_valid is not None
        ),
    )


def _share(values: Iterable[bool]) -> float | None:
    """The share of true values (None when there are none)."""
    seen = list(values)
    return sum(seen) / len(seen) if seen else None


def _accuracy(rows: Sequence[RowResult]) -> float:
    return sum(r.correct for r in rows) / len(rows) if rows else 0.0


def _member_weights(
    setups: Sequence[Setup], results: Sequence[RowResult]
) -> tuple[MemberWeight, ...]:
    weights = []
    for setup in setups:
        if setup.member is None:
            continue
        rows = [r for r in results if r.setup == setup.name]
        if rows:
            weights.append(
                MemberWeight(
                    model=setup.member.id,
                    setup=setup.name,
                    accuracy=round(_accuracy(rows), 4),
                    rows=len(rows),
                )
            )
    return tuple(weights)
