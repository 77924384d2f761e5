"""The report's statistics against textbook values."""

from __future__ import annotations

import pytest

from conclave.evaluation.stats import compare_paired, sign_test_p, wilson_interval


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (8, 10, 0.4902, 0.9433),
        (0, 10, 0.0, 0.2775),
        (50, 100, 0.4038, 0.5962),
        (10, 10, 0.7225, 1.0),
    ],
)
def test_wilson_interval_matches_known_values(
    successes: int, trials: int, low: float, high: float
) -> None:
    assert wilson_interval(successes, trials) == pytest.approx((low, high), abs=1e-4)


def test_wilson_interval_without_trials_is_uninformative() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("wins", "losses", "p"),
    [
        (10, 0, 2 / 1024),
        (0, 10, 2 / 1024),
        (7, 2, 92 / 512),
        (5, 5, 1.0),
        (0, 0, 1.0),
        (1, 0, 1.0),
    ],
)
def test_exact_sign_test(wins: int, losses: int, p: float) -> None:
    assert sign_test_p(wins, losses) == pytest.approx(p)


def test_paired_comparison_counts_only_shared_rows() -> None:
    strategy = {"a": True, "b": True, "c": False, "d": True, "extra": True}
    member = {"a": True, "b": False, "c": True, "d": False}
    comparison = compare_paired(strategy, member)
    assert (comparison.rows, comparison.wins, comparison.losses) == (4, 2, 1)
    assert comparison.difference == pytest.approx(0.25)
    assert comparison.p_value == pytest.approx(1.0)
