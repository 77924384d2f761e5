"""The grounded part of an evaluation's report: per set-up, how its answers with the documents
used them (see `conclave.evaluation.grounded`).

Citation recall and precision are ALCE's, averaged over the answers that did not abstain (as
ALCE averages over responses), for the answers as the panel wrote them and as returned after
the citation check; they are the support judge's verdicts, so the returned ones mostly measure
what the check kept. `source cited` needs no model: the answer cites a passage holding the
known source quote. Abstention is over the questions the documents do not answer; false
abstention over those they do.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean

from rich.table import Table

from conclave.evaluation.evaluate import RowResult
from conclave.evaluation.grounded import UNANSWERABLE, WITH_DOCUMENTS
from conclave.types import Frozen


class GroundedScore(Frozen):
    """One set-up's grounded answers on one grounded data set."""

    setup: str
    dataset: str
    """The grounded data set's name (its three parts together)."""
    answerable: int
    unanswerable: int
    abstention: float | None
    """Share of the unanswerable questions answered with an abstention."""
    false_abstention: float | None
    """Share of the answerable questions answered with an abstention."""
    written_recall: float | None
    written_precision: float | None
    returned_recall: float | None
    returned_precision: float | None
    source_retrieved: float | None
    source_cited: float | None
    """Of the answers that did not abstain, the share citing a passage with the source."""
    removed_markers: int
    unretrieved_citations: int


def grounded_scores(results: Sequence[RowResult]) -> tuple[GroundedScore, ...]:
    """Per (set-up, grounded data set), from the results of its "+docs" parts."""
    groups: dict[tuple[str, str], list[RowResult]] = {}
    for result in results:
        if result.grounding is None:
            continue
        base = result.dataset.removesuffix(UNANSWERABLE).removesuffix(WITH_DOCUMENTS)
        groups.setdefault((result.setup, base), []).append(result)
    return tuple(_score(setup, dataset, rows) for (setup, dataset), rows in groups.items())


def _score(setup: str, dataset: str, rows: Sequence[RowResult]) -> GroundedScore:
    outcomes = [row.grounding for row in rows if row.grounding is not None]
    answerable = [o for o in outcomes if o.answerable]
    unanswerable = [o for o in outcomes if not o.answerable]
    answered = [o for o in answerable if not o.abstained]
    return GroundedScore(
        setup=setup,
        dataset=dataset,
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        abstention=_share([o.abstained for o in unanswerable]),
        false_abstention=_share([o.abstained for o in answerable]),
        written_recall=_mean([o.written_recall for o in answered]),
        written_precision=_mean([o.written_precision for o in answered]),
        returned_recall=_mean([o.returned_recall for o in answered]),
        returned_precision=_mean([o.returned_precision for o in answered]),
        source_retrieved=_share([o.source_retrieved for o in answerable]),
        source_cited=_share([o.source_cited for o in answered]),
        removed_markers=sum(o.removed_markers for o in outcomes),
        unretrieved_citations=sum(o.unretrieved_citations for o in outcomes),
    )


def _share(flags: Sequence[bool | None]) -> float | None:
    known = [flag for flag in flags if flag is not None]
    return sum(known) / len(known) if known else None


def _mean(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return fmean(known) if known else None


def grounded_table(scores: Sequence[GroundedScore]) -> Table:
    """The grounded scores for people (accuracy with and without the documents is in the main
    table, as the data sets `<name>` and `<name>+docs`)."""
    table = Table(title="grounded answers", title_justify="left")
    columns = (
        "set-up", "data set", "answerable", "unanswerable", "abstention", "false abst.",
        "recall (written)", "precision (written)", "recall", "precision", "source retrieved",
        "source cited", "markers removed", "unretrieved cited",
    )  # fmt: skip
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index < 2 else "right")
    for score in scores:
        table.add_row(
            score.setup,
            score.dataset,
            str(score.answerable),
            str(score.unanswerable),
            _shown(score.abstention),
            _shown(score.false_abstention),
            _shown(score.written_recall),
            _shown(score.written_precision),
            _shown(score.returned_recall),
            _shown(score.returned_precision),
            _shown(score.source_retrieved),
            _shown(score.source_cited),
            str(score.removed_markers),
            str(score.unretrieved_citations),
        )
    return table


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
