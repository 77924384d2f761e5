"""Grounded data sets: questions about a corpus of documents, answered with and without them.

A grounded data set is a JSONL data set whose rows name a `corpus` (a folder of documents,
relative to the file) and say whether the documents answer them (`answerable`; the place of the
answer in `source_file` and `source_quote`, where known). `conclave eval` indexes the corpus into
a collection of its own (under its `--out` folder, re-indexing only changed files) and splits the
set into three, so that the usual report compares like with like:

- `<name>`: the answerable questions, asked without the documents (what the models know);
- `<name>+docs`: the same questions, grounded in the corpus (accuracy with the documents);
- `<name>+docs:unanswerable`: the questions the documents do not answer, grounded; an answer
  is right when it abstains ("not in the documents"), so its accuracy is the abstention rate.

Each grounded answer also records (`GroundedOutcome`) its citation recall and precision (ALCE,
as the support judge found them: see `conclave.consensus.citations`), for the answer as the panel
wrote it and as returned; citations of a passage that was not retrieved; and, where the source
is known, whether a retrieved passage held it and whether the answer cited one that does (a check
that needs no model).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from conclave.config import ConsensusConfig, DocumentsOptions
from conclave.consensus.citations import Passage, without_markers
from conclave.consensus.transcript import Transcript
from conclave.documents.indexing import add_documents
from conclave.documents.sqlite_index import SqliteLibrary
from conclave.errors import ConfigError
from conclave.evaluation.dataset import Dataset, EvalRow, GroundedRow
from conclave.evaluation.scoring import Scorers
from conclave.types import Frozen

COLLECTIONS_FOLDER = "collections"
WITH_DOCUMENTS = "+docs"
UNANSWERABLE = "+docs:unanswerable"


class GroundedOutcome(Frozen):
    """What one grounded answer did with its documents."""

    answerable: bool
    abstained: bool
    statements: int = 0
    citations: int = 0
    unretrieved_citations: int = 0
    """Citations in the answer returned naming a passage that was not retrieved (never
    allowed: the check removes such markers)."""
    removed_markers: int = 0
    """Markers of the answer as written that named no passage given (removed by the check)."""
    written_recall: float | None = None
    written_precision: float | None = None
    returned_recall: float | None = None
    returned_precision: float | None = None
    source_retrieved: bool | None = None
    """A retrieved passage holds the source quote (None: the source is not known)."""
    source_cited: bool | None = None
    """The answer returned cites a passage holding the source quote."""


def is_grounded(dataset: Dataset) -> bool:
    return any(isinstance(row, GroundedRow) for row in dataset.rows)


def grounded_datasets(datasets: Sequence[tuple[Dataset, Path]], out_dir: Path) -> list[Dataset]:
    """Every data set as it is, a grounded one split into its three parts (see the module
    docstring), with its corpus indexed into `out_dir/collections`."""
    expanded: list[Dataset] = []
    for dataset, path in datasets:
        if not is_grounded(dataset):
            expanded.append(dataset)
            continue
        options = index_corpus(dataset, path, out_dir / COLLECTIONS_FOLDER)
        rows = [row for row in dataset.rows if isinstance(row, GroundedRow)]
        answerable = tuple(row for row in rows if row.answerable)
        unanswerable = tuple(row for row in rows if not row.answerable)
        expanded.append(Dataset(name=dataset.name, rows=answerable))
        expanded.append(
            Dataset(name=dataset.name + WITH_DOCUMENTS, rows=answerable, documents=options)
        )
        if unanswerable:
            expanded.append(
                Dataset(name=dataset.name + UNANSWERABLE, rows=unanswerable, documents=options)
            )
    return [dataset for dataset in expanded if dataset.rows]


def index_corpus(dataset: Dataset, path: Path, folder: Path) -> DocumentsOptions:
    """Index the data set's corpus into a collection named after it; the `documents` block
    that grounds answers in it."""
    corpora = {row.corpus for row in dataset.rows if isinstance(row, GroundedRow)}
    plain = [row.id for row in dataset.rows if not isinstance(row, GroundedRow)]
    if len(corpora) != 1 or plain:
        raise ConfigError(
            f"{path}: every row of a grounded data set names the same corpus "
            f"(found {', '.join(sorted(corpora)) or 'none'}"
            + (f"; rows without one: {', '.join(plain[:5])}" if plain else "")
            + ")"
        )
    corpus = path.parent / corpora.pop()
    if not corpus.is_dir():
        raise ConfigError(
            f"{path}: the corpus folder {corpus} does not exist (`corpus` is relative to the "
            "data set's file)"
        )
    library = SqliteLibrary(folder)
    add_documents(library, dataset.name, [corpus])
    return DocumentsOptions(collection=dataset.name, library=str(folder))


def answering_config(
    config: ConsensusConfig, row: EvalRow, documents: DocumentsOptions | None
) -> ConsensusConfig:
    """The config a row is answered with: grounded in `documents` when given (the config's own
    `documents` settings, passages, retrieval, support check..., kept: they count in the
    set-up's fingerprint and are what is measured); a grounded data set's question asked
    without them has no `documents` block at all; any other row, the config as it is."""
    if documents is not None:
        own = config.documents.model_dump(mode="json") if config.documents is not None else {}
        where = documents.model_dump(mode="json", include={"collection", "library"})
        return config.with_changes(documents={**own, **where})
    if isinstance(row, GroundedRow) and config.documents is not None:
        return config.with_changes(documents=None)
    return config


def grounded_correct(
    answer: str, row: EvalRow, scorers: Scorers, transcript: Transcript | None
) -> bool:
    """Right or wrong: a question the documents do not answer is right when the answer
    abstained; any other grounded question is scored as usual with the answer's markers left
    out (an abstention is wrong); a row of another data set as usual."""
    if not isinstance(row, GroundedRow):
        return scorers.score(answer, row)
    if not row.answerable:
        return transcript is not None and transcript.abstained
    if transcript is not None and transcript.abstained:
        return False
    return scorers.score(without_markers(answer), row)


def grounded_outcome(transcript: Transcript, row: EvalRow) -> GroundedOutcome:
    """What the transcript of a grounded answer shows about its citations."""
    retrieval = transcript.retrieval
    report = transcript.citation_report
    retrieved = {item.passage.id: item.passage for item in retrieval.passages} if retrieval else {}
    quote = row.source_quote if isinstance(row, GroundedRow) else None
    cited = [retrieved[c.passage_id] for c in transcript.citations if c.passage_id in retrieved]
    written = report.written if report is not None else None
    returned = report.returned if report is not None else None
    return GroundedOutcome(
        answerable=not isinstance(row, GroundedRow) or row.answerable,
        abstained=transcript.abstained,
        statements=written.statements if written is not None else 0,
        citations=len(transcript.citations),
        unretrieved_citations=sum(c.passage_id not in retrieved for c in transcript.citations),
        removed_markers=len(report.removed_markers) if report is not None else 0,
        written_recall=written.recall if written is not None else None,
        written_precision=written.precision if written is not None else None,
        returned_recall=returned.recall if returned is not None else None,
        returned_precision=returned.precision if returned is not None else None,
        source_retrieved=_holds(retrieved.values(), quote) if quote else None,
        source_cited=_holds(cited, quote) if quote and not transcript.abstained else None,
    )


def _holds(passages: Iterable[Passage], quote: str) -> bool:
    wanted = " ".join(quote.split())
    return any(wanted in " ".join(p.text.split()) for p in passages)
