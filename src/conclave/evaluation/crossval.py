"""Choosing among set-ups the way the choice will be used: on some questions, judged on others.

A default (a threshold, which methods a strategy uses) chosen on the very questions it is then
reported on looks better than it is. So the choice is made on part of the data and reported on
the part left out, in turn:

- **leave one set out** (`sets`): each data set is left out of the choice once (with MMLU's
  subject groups as sets of their own): how the choice does on a kind of question it never saw;
- **folds** (`folds:K`): the rows split into K parts at random (seeded by row), each left out once.

The choice itself, on the rows kept, for each kind of question (letter, number, text, parts, and
calculation: a number or text worked out, `conclave.consensus.kinds`):

1. the strategy set-up with the most right answers; with a time cap, the most right answers
   whose model seconds per question stay within `time_cap` times the best member's, traded per
   kind by one price per second (so the kinds where extra time buys the most answers get it);
2. with the rule `one-se` (the default), the cheapest set-up (fewest model seconds on the kind's
   rows) whose right answers are within one standard error of that best's: the one-standard-
   error rule of cross-validation (Breiman et al., "Classification and Regression Trees", 1984;
   Hastie, Tibshirani and Friedman, "The Elements of Statistical Learning", 7.10). On a few
   dozen rows a set-up's lead of two or three answers is mostly noise, and the most right
   answers then follows the noise of the rows kept, not what carries to the rows left out.
   The standard error is that of the paired difference in right answers between the two
   set-ups on the same n rows, b rows right for the best only and c for the other only:
   sqrt(b + c - (b - c)^2 / n) (the usual estimate for paired proportions, times n). The rule
   `best` keeps step 1's choice.

Nothing is run again: every candidate answered every row, so the chosen set-up's answer to a row
left out is read from the same results. The report pools every row left out, set by set and all
together, against the best member alone (also chosen on the rows kept), with the paired sign test.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from conclave.errors import ConfigError
from conclave.evaluation.dataset import Dataset
from conclave.evaluation.evaluate import RowResult
from conclave.evaluation.report import CrossValidation, HeldOutScore, Paired
from conclave.evaluation.setups import Setup
from conclave.evaluation.stats import compare_paired, wilson_interval

RowKey = tuple[str, str]
"""A row: its data set and its id."""

ANY_KIND = "any"

ChoiceRule = Literal["one-se", "best"]
"""How a set-up is chosen per kind (see the module's account): `one-se`, the cheapest within one
standard error of the most right answers; `best`, the most right answers."""
_RULES: dict[str, ChoiceRule] = {rule: rule for rule in get_args(ChoiceRule)}


def parse_choice_rule(text: str) -> ChoiceRule:
    """`one-se` or `best` (`conclave eval --choose`)."""
    if text not in _RULES:
        raise ConfigError(f"--choose {text!r}: expected one of {', '.join(_RULES)}")
    return _RULES[text]


_PRICES = (0.0, *(10 ** (exponent / 8) for exponent in range(-40, 25)))
"""Prices of a model second, in right answers, tried in turn until the time cap holds."""


@dataclass(frozen=True)
class HeldOutScheme:
    """How rows are left out: each data set in turn, or `folds` random parts."""

    folds: int | None = None
    seed: str = "conclave"

    @classmethod
    def parse(cls, text: str) -> HeldOutScheme:
        """`sets`, or `folds:K` (K from 2)."""
        if text == "sets":
            return cls()
        name, _, count = text.partition(":")
        if name == "folds" and count.isdigit() and int(count) >= 2:
            return cls(folds=int(count))
        raise ConfigError(
            f"--held-out {text!r}: expected sets (each data set left out in turn) or folds:K "
            "(K random parts, K >= 2)"
        )

    @property
    def name(self) -> str:
        return "sets" if self.folds is None else f"folds:{self.folds}"

    def parts(self, rows: Sequence[RowKey]) -> list[tuple[str, set[RowKey]]]:
        """Each part to leave out: its label and its rows."""
        if self.folds is None:
            sets = list(dict.fromkeys(dataset for dataset, _ in rows))
            return [(name, {row for row in rows if row[0] == name}) for name in sets]
        folds: list[set[RowKey]] = [set() for _ in range(self.folds)]
        for row in rows:
            digest = hashlib.sha256(f"{self.seed}\x1f{row[0]}\x1f{row[1]}".encode()).digest()
            folds[int.from_bytes(digest[:8], "big") % self.folds].add(row)
        return [(f"fold {i + 1} of {self.folds}", fold) for i, fold in enumerate(folds)]


def cross_validate(
    datasets: Sequence[Dataset],
    setups: Sequence[Setup],
    results: Sequence[RowResult],
    scheme: HeldOutScheme,
    *,
    time_cap: float | None = None,
    rule: ChoiceRule = "one-se",
) -> CrossValidation | None:
    """Each part of the rows left out of the choice in turn (see the module's account); None
    when there is nothing to choose from or to compare with (no strategy set-up, no member
    alone, or fewer than two parts)."""
    table = {(r.setup, (r.dataset, r.row_id)): r for r in results}
    kinds: dict[RowKey, str] = {
        (d.name, row.id): row.question_kind for d in datasets for row in d.rows
    }
    candidates = [s.name for s in setups if s.kind == "strategy"]
    members = [s.name for s in setups if s.kind == "member"]
    answered = [
        row for row in kinds if all((name, row) in table for name in (*candidates, *members))
    ]
    parts = [(label, rows) for label, rows in scheme.parts(answered) if rows]
    if not candidates or not members or len(parts) < 2:
        return None
    scored: list[HeldOutScore] = []
    pooled: list[tuple[RowKey, str, str]] = []
    for label, left_out in parts:
        kept = [row for row in answered if row not in left_out]
        best = max(members, key=lambda name: _correct(table, name, kept))
        chosen = choose(table, candidates, best, kept, kinds, time_cap, rule)
        # a kind the rows kept never asked gets the choice made over every kind together
        everyone = dict.fromkeys(kept, ANY_KIND)
        anything = choose(table, candidates, best, kept, everyone, time_cap, rule)
        rows = sorted(left_out)
        picks = [(row, chosen.get(kinds[row], anything[ANY_KIND]), best) for row in rows]
        shown = {**chosen, **{kinds[r]: anything[ANY_KIND] for r in rows if kinds[r] not in chosen}}
        scored.append(_held_out_score(table, label, picks, shown))
        pooled.extend(picks)
    everything = _held_out_score(table, "all", pooled, _common_choice(scored))
    best = max(members, key=lambda name: _correct(table, name, answered))
    return CrossValidation(
        scheme=scheme.name,
        time_cap=time_cap,
        rule=rule,
        held_out=(*scored, everything),
        chosen_on_all=choose(table, candidates, best, answered, kinds, time_cap, rule),
    )


def choose(
    table: Mapping[tuple[str, RowKey], RowResult],
    candidates: Sequence[str],
    baseline: str,
    rows: Sequence[RowKey],
    kinds: Mapping[RowKey, str],
    time_cap: float | None,
    rule: ChoiceRule = "one-se",
) -> dict[str, str]:
    """For each kind of question among `rows`, the candidate with the most right answers
    there (ties: the faster); with `time_cap`, the most right answers whose model time stays
    within `time_cap` times the baseline's on these rows, one price per second for every kind
    (the cheapest candidates when no price keeps it). With the rule `one-se`, then the
    cheapest candidate within one standard error of that one (`within_one_se`), which keeps
    within the cap too."""
    by_kind: dict[str, list[RowKey]] = {}
    for row in rows:
        by_kind.setdefault(kinds[row], []).append(row)
    score = {
        (kind, name): (
            sum(table[(name, row)].correct for row in kind_rows),
            sum(table[(name, row)].model_s for row in kind_rows),
        )
        for kind, kind_rows in by_kind.items()
        for name in candidates
    }
    allowed = (
        None if time_cap is None else time_cap * sum(table[(baseline, r)].model_s for r in rows)
    )
    for price in _PRICES:
        picked = {
            kind: max(
                candidates,
                key=lambda name: (
                    score[(kind, name)][0] - price * score[(kind, name)][1],
                    -score[(kind, name)][1],
                ),
            )
            for kind in by_kind
        }
        spent = sum(score[(kind, name)][1] for kind, name in picked.items())
        if allowed is None or spent <= allowed:
            break
    else:
        picked = {
            kind: min(candidates, key=lambda name: score[(kind, name)][1]) for kind in by_kind
        }
    if rule == "best":
        return picked
    return {
        kind: min(
            (name for name in candidates if within_one_se(table, best, name, by_kind[kind])),
            key=lambda name: (score[(kind, name)][1], -score[(kind, name)][0]),
        )
        for kind, best in picked.items()
    }


def within_one_se(
    table: Mapping[tuple[str, RowKey], RowResult],
    best: str,
    other: str,
    rows: Sequence[RowKey],
) -> bool:
    """Whether `other`'s right answers on `rows` fall short of `best`'s by at most one
    standard error of their paired difference: with b rows right for `best` only and c for
    `other` only, out of n, (b - c) <= sqrt(b + c - (b - c)^2 / n)."""
    only_best = sum(table[(best, r)].correct and not table[(other, r)].correct for r in rows)
    only_other = sum(table[(other, r)].correct and not table[(best, r)].correct for r in rows)
    lead = only_best - only_other
    spread = only_best + only_other - lead * lead / len(rows) if rows else 0.0
    return lead <= math.sqrt(max(spread, 0.0))


def _correct(
    table: Mapping[tuple[str, RowKey], RowResult], name: str, rows: Sequence[RowKey]
) -> int:
    return sum(table[(name, row)].correct for row in rows)


def _common_choice(scored: Sequence[HeldOutScore]) -> dict[str, str]:
    """The choice of every part, where all parts chose alike ("varies" otherwise)."""
    kinds = {kind for score in scored for kind in score.chosen}
    common = {}
    for kind in sorted(kinds):
        picks = {score.chosen[kind] for score in scored if kind in score.chosen}
        common[kind] = picks.pop() if len(picks) == 1 else "varies"
    return common


def _held_out_score(
    table: Mapping[tuple[str, RowKey], RowResult],
    label: str,
    picks: Sequence[tuple[RowKey, str, str]],
    chosen: Mapping[str, str],
) -> HeldOutScore:
    """How the chosen set-ups did on the rows left out, against the best member alone."""
    own = [table[(name, row)] for row, name, _ in picks]
    alone = [table[(best, row)] for row, _, best in picks]
    count = len(own)
    correct = sum(r.correct for r in own)
    low, high = wilson_interval(correct, count)
    comparison = compare_paired(
        {f"{r.dataset}\x1f{r.row_id}": r.correct for r in own},
        {f"{r.dataset}\x1f{r.row_id}": r.correct for r in alone},
    )
    bests = sorted({best for _, _, best in picks})
    formed = [r.in_form for r in own if r.in_form is not None]
    return HeldOutScore(
        held_out=label,
        rows=count,
        chosen=dict(chosen),
        accuracy=correct / count,
        ci_low=low,
        ci_high=high,
        best_member=", ".join(bests),
        best_member_accuracy=sum(r.correct for r in alone) / count,
        vs_best_member=Paired(
            against=", ".join(bests),
            rows=comparison.rows,
            wins=comparison.wins,
            losses=comparison.losses,
            difference=comparison.difference,
            p_value=comparison.p_value,
        ),
        model_s_per_question=sum(r.model_s for r in own) / count,
        best_member_model_s_per_question=sum(r.model_s for r in alone) / count,
        tokens_per_question=sum(r.tokens for r in own) / count,
        best_member_tokens_per_question=sum(r.tokens for r in alone) / count,
        first_round_share=sum(r.rounds == 1 for r in own) / count,
        in_form_share=sum(formed) / len(formed) if formed else None,
    )
