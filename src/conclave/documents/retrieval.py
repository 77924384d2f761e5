"""Finding the passages for a question: BM25 full-text rank by default, or a hybrid that fuses
it with MiniLM cosine similarity by reciprocal rank fusion (RRF, Cormack et al. 2009).

The question's content words (lower-cased, English stop words left out) are searched for with
OR, so a passage need not hold them all; BM25 weighs the rare ones. The hybrid ranks the best
CANDIDATES of each method and scores a passage by the sum of 1 / (RRF_K + rank) over the two
lists, so that a passage both find comes first and one only the embeddings find (a paraphrase
with none of the question's words) can still be retrieved.
"""

from __future__ import annotations

from conclave.config import RetrievalMode
from conclave.consensus.citations import content_words
from conclave.documents.index import PassageIndex, ScoredPassage
from conclave.documents.vectors import embed_texts, passage_embedder
from conclave.errors import ConfigError

RRF_K = 60
"""The rank constant of reciprocal rank fusion (60 as in the paper)."""
CANDIDATES = 50
"""How many passages each method ranks before fusion."""
MAX_QUERY_WORDS = 48


def query_words(question: str) -> list[str]:
    """The words a question is searched by: its content words (see `content_words`)."""
    return content_words(question)[:MAX_QUERY_WORDS]


def search_passages(
    index: PassageIndex, question: str, *, limit: int, mode: RetrievalMode = "bm25"
) -> list[ScoredPassage]:
    """The `limit` best passages of the collection for `question`, best first."""
    words = query_words(question)
    if mode == "bm25":
        return index.search(words, limit)
    if not index.info().embeddings:
        raise ConfigError(
            f"the collection {index.name!r} was indexed without embeddings, which hybrid "
            f"retrieval needs: add its files again to a new collection with --embeddings, "
            "or use bm25 retrieval"
        )
    by_text = index.search(words, max(CANDIDATES, limit))
    vector = embed_texts(passage_embedder(), [question])[0]
    by_meaning = index.nearest(vector, max(CANDIDATES, limit))
    return fuse_rankings([by_text, by_meaning], limit)


def fuse_rankings(rankings: list[list[ScoredPassage]], limit: int) -> list[ScoredPassage]:
    """Reciprocal rank fusion of several rankings; the score is the fused one."""
    scores: dict[str, float] = {}
    found: dict[str, ScoredPassage] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            key = hit.passage.id
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
            found.setdefault(key, hit)
    order = sorted(scores, key=lambda key: -scores[key])[:limit]
    return [found[key].model_copy(update={"score": scores[key]}) for key in order]
