"""Choices made on some rows and reported on the rows left out: never on the rows they judge."""

from __future__ import annotations

import pytest

from conclave.config import AggregatorSpec, ConsensusConfig, ModelSpec
from conclave.errors import ConfigError
from conclave.evaluation.crossval import (
    HeldOutScheme,
    RowKey,
    cross_validate,
    parse_choice_rule,
    within_one_se,
)
from conclave.evaluation.dataset import Dataset, EvalRow
from conclave.evaluation.evaluate import RowResult
from conclave.evaluation.setups import Setup

CONFIG = ConsensusConfig(
    models=(ModelSpec(id="local:m"),), aggregator=(AggregatorSpec(model=ModelSpec(id="local:m")),)
)


def _setup(name: str, kind: str) -> Setup:
    return Setup.model_validate({"name": name, "kind": kind, "config": CONFIG})


def _dataset(name: str, kind: str, count: int) -> Dataset:
    rows = [
        EvalRow(id=f"{name}-{i}", question="Q?", answers=("1",), kind="number")
        if kind == "number"
        else EvalRow(id=f"{name}-{i}", question="Q?", answers=("x",), kind="text")
        for i in range(count)
    ]
    return Dataset(name=name, rows=tuple(rows))


def _results(
    dataset: Dataset, setup: str, right: int, seconds: float = 1.0, rounds: int = 1
) -> list[RowResult]:
    return [
        RowResult(
            dataset=dataset.name,
            row_id=row.id,
            setup=setup,
            setup_fingerprint="s",
            row_fingerprint="r",
            answer="",
            correct=index < right,
            model_s=seconds,
            rounds=rounds,
        )
        for index, row in enumerate(dataset.rows)
    ]


SETUPS = [_setup("alone", "member"), _setup("direct", "strategy"), _setup("careful", "strategy")]


def test_each_set_is_judged_by_a_choice_made_on_the_others() -> None:
    # "careful" wins on sums and loses on words; "direct" is the member's own answer
    sums, more_sums, words = (
        _dataset("sums", "number", 10),
        _dataset("more", "number", 10),
        (_dataset("words", "text", 10)),
    )
    results = [
        *_results(sums, "alone", 5),
        *_results(sums, "direct", 5),
        *_results(sums, "careful", 9, seconds=3.0, rounds=2),
        *_results(more_sums, "alone", 4),
        *_results(more_sums, "direct", 4),
        *_results(more_sums, "careful", 8, seconds=3.0, rounds=2),
        *_results(words, "alone", 7),
        *_results(words, "direct", 7),
        *_results(words, "careful", 3, seconds=3.0, rounds=2),
    ]
    report = cross_validate([sums, more_sums, words], SETUPS, results, HeldOutScheme.parse("sets"))
    assert report is not None
    by_set = {score.held_out: score for score in report.held_out}
    assert by_set["sums"].chosen == {"number": "careful", "text": "direct"}
    assert (by_set["sums"].accuracy, by_set["sums"].best_member_accuracy) == (0.9, 0.5)
    assert by_set["sums"].vs_best_member.wins == 4
    # the words set is judged by what the sums chose for text: nothing was learnt on words
    assert by_set["words"].chosen == {"number": "careful", "text": "careful"}
    assert by_set["words"].accuracy == 0.3  # the only candidate chosen elsewhere fails here
    assert report.chosen_on_all == {"number": "careful", "text": "direct"}
    everything = by_set["all"]
    assert everything.rows == 30
    assert everything.accuracy == pytest.approx((9 + 8 + 3) / 30)
    assert everything.best_member_accuracy == pytest.approx(16 / 30)
    assert everything.time_ratio == pytest.approx((20 * 3 + 10 * 3) / 30)
    assert everything.first_round_share == 0.0


def test_a_time_cap_keeps_the_slow_candidate_where_it_pays_most() -> None:
    sums, words = _dataset("sums", "number", 10), _dataset("words", "text", 10)
    more_sums, more_words = _dataset("sums2", "number", 10), _dataset("words2", "text", 10)
    results = []
    for dataset, careful_right in ((sums, 9), (more_sums, 9), (words, 6), (more_words, 6)):
        results += _results(dataset, "alone", 5)
        results += _results(dataset, "direct", 5)
        results += _results(dataset, "careful", careful_right, seconds=2.0)
    datasets = [sums, words, more_sums, more_words]
    free = cross_validate(datasets, SETUPS, results, HeldOutScheme.parse("sets"))
    capped = cross_validate(datasets, SETUPS, results, HeldOutScheme.parse("sets"), time_cap=1.5)
    assert free is not None
    assert capped is not None
    assert free.held_out[0].chosen == {"number": "careful", "text": "careful"}
    # 1.5x the member's time buys one kind's careful answers: the sums, where it gains most
    assert capped.held_out[0].chosen == {"number": "careful", "text": "direct"}
    assert capped.held_out[-1].time_ratio == pytest.approx(1.5)


def test_folds_split_the_rows_the_same_way_every_time() -> None:
    sums = _dataset("sums", "number", 40)
    results = [*_results(sums, "alone", 20), *_results(sums, "direct", 20)]
    results += _results(sums, "careful", 30)
    scheme = HeldOutScheme.parse("folds:4")
    first = cross_validate([sums], SETUPS, results, scheme)
    again = cross_validate([sums], SETUPS, results, scheme)
    assert first is not None
    assert again is not None
    assert [s.rows for s in first.held_out] == [s.rows for s in again.held_out]
    assert sum(s.rows for s in first.held_out[:-1]) == first.held_out[-1].rows == 40


def test_nothing_to_choose_gives_no_report_and_a_bad_scheme_is_named() -> None:
    sums = _dataset("sums", "number", 4)
    members_only = [_setup("alone", "member")]
    results = _results(sums, "alone", 2)
    assert cross_validate([sums], members_only, results, HeldOutScheme.parse("folds:2")) is None
    with pytest.raises(ConfigError, match="folds:K"):
        HeldOutScheme.parse("folds:1")


def test_a_calculation_and_a_recalled_number_are_chosen_for_apart() -> None:
    def numbers(name: str, question: str) -> Dataset:
        rows = [EvalRow(id=f"{name}-{i}", question=question, answers=("1",)) for i in range(10)]
        return Dataset(name=name, rows=tuple(rows))

    sums = numbers("sums", "What is 3 + 4?")
    more_sums = numbers("more", "What is 12 / 4?")
    facts = numbers("facts", "What is the atomic number of iron?")
    more_facts = numbers("years", "In what year did Ohio become a state?")
    results = []
    for dataset, careful_right in ((sums, 9), (more_sums, 8), (facts, 3), (more_facts, 4)):
        results += _results(dataset, "alone", 6)
        results += _results(dataset, "direct", 6)
        results += _results(dataset, "careful", careful_right, seconds=3.0)
    datasets = [sums, more_sums, facts, more_facts]
    report = cross_validate(datasets, SETUPS, results, HeldOutScheme.parse("sets"))
    assert report is not None
    assert report.chosen_on_all == {"calculation": "careful", "number": "direct"}
    by_set = {score.held_out: score for score in report.held_out}
    assert by_set["sums"].accuracy == 0.9  # chosen on the other calculations
    assert by_set["facts"].accuracy == 0.6  # chosen on the other recalled numbers


def _marked(dataset: Dataset, setup: str, right: str, seconds: float) -> list[RowResult]:
    """One result per row, right where `right` has a "1" at the row's place."""
    return [
        RowResult(
            dataset=dataset.name,
            row_id=row.id,
            setup=setup,
            setup_fingerprint="s",
            row_fingerprint="r",
            answer="",
            correct=mark == "1",
            model_s=seconds,
        )
        for row, mark in zip(dataset.rows, right, strict=True)
    ]


def test_one_se_takes_the_cheaper_set_up_when_the_lead_is_within_noise() -> None:
    # on the 20 rows kept, careful is right on 13 and direct on 11: careful alone on 4, direct
    # alone on 2, so the lead of 2 is under one standard error, sqrt(6 - 4/20) = 2.4
    sums, more_sums = _dataset("sums", "number", 10), _dataset("more", "number", 10)
    held = _dataset("held", "number", 10)
    results = [
        *_marked(sums, "alone", "1111100000", 1.0),
        *_marked(sums, "direct", "1111110000", 1.0),
        *_marked(sums, "careful", "1111101100", 3.0),
        *_marked(more_sums, "alone", "1111100000", 1.0),
        *_marked(more_sums, "direct", "1111100000", 1.0),
        *_marked(more_sums, "careful", "1111011000", 3.0),
        *_marked(held, "alone", "1111100000", 1.0),
        *_marked(held, "direct", "1111100000", 1.0),
        *_marked(held, "careful", "0000011111", 3.0),
    ]
    datasets = [sums, more_sums, held]
    scheme = HeldOutScheme.parse("sets")
    best = cross_validate(datasets, SETUPS, results, scheme, rule="best")
    one_se = cross_validate(datasets, SETUPS, results, scheme)
    assert best is not None
    assert one_se is not None
    assert (best.rule, one_se.rule) == ("best", "one-se")
    assert {s.held_out: s.chosen for s in best.held_out}["held"] == {"number": "careful"}
    assert {s.held_out: s.chosen for s in one_se.held_out}["held"] == {"number": "direct"}


def test_one_se_keeps_a_lead_beyond_noise() -> None:
    keys: list[RowKey] = [("d", str(i)) for i in range(10)]

    def table(best: str, other: str) -> dict[tuple[str, RowKey], RowResult]:
        return {
            (name, key): RowResult(
                dataset=key[0],
                row_id=key[1],
                setup=name,
                setup_fingerprint="s",
                row_fingerprint="r",
                answer="",
                correct=marks[int(key[1])] == "1",
            )
            for name, marks in (("best", best), ("other", other))
            for key in keys
        }

    # a lead of 4 with 4 rows apart: sqrt(4 - 16/10) = 1.5
    assert not within_one_se(table("1111111100", "1111000000"), "best", "other", keys)
    # a lead of 1 with 3 rows apart: sqrt(3 - 1/10) = 1.7
    assert within_one_se(table("1111111000", "1111100100"), "best", "other", keys)
    assert within_one_se(table("1111111000", "1111111000"), "best", "other", keys)


def test_an_unknown_choice_rule_is_named() -> None:
    assert parse_choice_rule("best") == "best"
    with pytest.raises(ConfigError, match="one-se, best"):
        parse_choice_rule("fastest")
