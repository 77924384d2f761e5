"""The grounding extension: a config's `documents` block turned into the grounding steps of
every strategy (see `conclave.consensus.grounding`), with the collection it names as their
source of passages. Registered on import (`conclave` imports it)."""

from __future__ import annotations

from conclave.config import RetrievalMode
from conclave.consensus.citations import Passage
from conclave.consensus.grounding import STEP, Grounding, grounding_steps
from conclave.consensus.strategies.draws import strongest_first
from conclave.consensus.strategies.registry import Extension, StrategyContext, register_extension
from conclave.documents.index import PassageIndex
from conclave.documents.library import open_collection
from conclave.documents.retrieval import search_passages


class CollectionFinder:
    """A collection searched one way: the passages a grounded run is given."""

    def __init__(self, index: PassageIndex, mode: RetrievalMode) -> None:
        self._index = index
        self._mode: RetrievalMode = mode

    @property
    def collection(self) -> str:
        return self._index.name

    @property
    def retrieval(self) -> str:
        return self._mode

    def find(self, question: str, limit: int) -> list[tuple[Passage, float]]:
        hits = search_passages(self._index, question, limit=limit, mode=self._mode)
        return [(hit.passage, hit.score) for hit in hits]


def grounding_extension(context: StrategyContext) -> Extension:
    """Both steps, for a config with a `documents` block (none without one). The collection is
    opened here, so that an unknown one fails before any model is called; the support judge
    is the strongest member (the heaviest)."""
    options = context.config.documents
    if options is None:
        return Extension()
    finder = CollectionFinder(open_collection(options), options.retrieval)
    judge = strongest_first(context.panel.members)[0]
    return grounding_steps(Grounding(options, finder, judge=judge, calls=context.calls))


register_extension(STEP, grounding_extension)
