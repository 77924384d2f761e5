"""The statistics of a report: accuracy intervals and paired comparisons.

Exact formulas with the standard library only, so they can be checked against textbook values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

Z_95 = 1.959963984540054
"""The two-sided 95% quantile of the standard normal distribution."""


def wilson_interval(successes: int, trials: int, *, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) with no trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test (exact McNemar) p-value for `wins` against `losses` among the
    discordant pairs; 1.0 when there are none."""
    discordant = wins + losses
    if discordant == 0:
        return 1.0
    tail = sum(math.comb(discordant, k) for k in range(min(wins, losses) + 1))
    return min(1.0, 2 * tail / (1 << discordant))


@dataclass(frozen=True)
class PairedComparison:
    """How one set-up did against another on the same rows."""

    rows: int
    wins: int
    """Rows this set-up got right and the other wrong."""
    losses: int
    """Rows this set-up got wrong and the other right."""

    @property
    def difference(self) -> float:
        """Accuracy difference in points of proportion (0.05 = 5 points)."""
        return (self.wins - self.losses) / self.rows if self.rows else 0.0

    @property
    def p_value(self) -> float:
        return sign_test_p(self.wins, self.losses)


def compare_paired(correct: Mapping[str, bool], baseline: Mapping[str, bool]) -> PairedComparison:
    """Compare two set-ups on the rows both have a result for (keyed by row id)."""
    shared = correct.keys() & baseline.keys()
    wins = sum(1 for key in shared if correct[key] and not baseline[key])
    losses = sum(1 for key in shared if baseline[key] and not correct[key])
    return PairedComparison(rows=len(shared), wins=wins, losses=losses)
