"""The `documents` block of a consensus config: which collection grounds the answers, and how
the citation check treats what the passages do not support."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from conclave.types import Frozen

RetrievalMode = Literal["bm25", "hybrid"]
SupportCheck = Literal["judge", "lexical"]


class DocumentsOptions(Frozen):
    """Ground every answer in a collection of the user's documents.

    `"documents": "manual"` is short for `{"collection": "manual"}`.
    """

    collection: str = Field(min_length=1)
    """The collection (see `conclave docs list`) the passages come from."""
    library: str | None = None
    """Where that collection is kept, when not in conclave's own place (see
    `conclave.documents.library`): a folder of SQLite collections, or a postgresql:// URL."""
    passages: int = Field(default=5, ge=1, le=20)
    """How many passages the members are given, numbered [1]..[passages]."""
    retrieval: RetrievalMode = "bm25"
    """bm25 (full-text rank), or hybrid (fused with MiniLM similarity; the collection must have
    been indexed with embeddings)."""
    support_check: SupportCheck = "judge"
    """judge: the strongest member says whether each cited passage supports its sentence (a
    yes/no reply, with its token probability where the backend gives one), the lexical check
    standing in when it cannot answer; lexical: word overlap only, no model call."""
    support_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    """The judge's least probability of "yes" for a sentence to count as supported."""
    unsupported: Literal["drop", "mark"] = "drop"
    """What happens to a sentence no passage supports: dropped, or kept and marked."""
    general_knowledge: bool = False
    """When the documents do not hold the answer: false abstains ("The documents do not
    contain the answer."); true returns the panel's answer from general knowledge, marked."""

    @model_validator(mode="before")
    @classmethod
    def _name_alone(cls, data: object) -> object:
        return {"collection": data} if isinstance(data, str) else data
