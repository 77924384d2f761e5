"""What a collection's index offers, whichever database holds it.

A collection is a named set of indexed files and their passages. `PassageIndex` is one
collection: its files, full-text search (SQLite FTS5 BM25, or PostgreSQL's full-text search),
nearest passages by embedding where the collection keeps them, and writes that happen inside one
transaction (`writing()`), so that an add that fails half-way leaves the index as it was.
`Library` is every collection of one place (a folder of SQLite files, or a PostgreSQL database).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from conclave.consensus.citations import Passage
from conclave.documents.parsing import DocumentKind
from conclave.errors import ConfigError
from conclave.types import Frozen

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]

_COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

VECTOR_DIMENSIONS = 384
"""The size of a MiniLM passage vector."""


class IndexedFile(Frozen):
    """A file of a collection, as it was when indexed."""

    path: str
    sha256: str
    kind: DocumentKind
    title: str
    chars: int
    passages: int
    indexed_at: datetime


class CollectionInfo(Frozen):
    """A collection's name, where it is kept, and its size."""

    name: str
    location: str
    files: int
    passages: int
    embeddings: bool
    """Whether its passages carry MiniLM vectors (needed for hybrid retrieval)."""
    created_at: datetime


class ScoredPassage(Frozen):
    """A passage found by a search, with the search's score (higher is better)."""

    passage: Passage
    score: float


class IndexWriter(Protocol):
    """Changes to a collection inside one transaction."""

    def replace_file(
        self, file: IndexedFile, passages: Sequence[Passage], vectors: Vectors | None
    ) -> None:
        """Index `file` with these passages (and their vectors), in place of what it had."""
        ...

    def remove_file(self, path: str) -> bool:
        """Drop a file and its passages; False when the collection does not hold it."""
        ...


class PassageIndex(Protocol):
    """One collection."""

    @property
    def name(self) -> str: ...

    def info(self) -> CollectionInfo: ...

    def files(self) -> list[IndexedFile]: ...

    def file_hash(self, path: str) -> str | None:
        """The sha256 the file had when indexed, or None when it is not in the collection."""
        ...

    def writing(self) -> AbstractContextManager[IndexWriter]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        ...

    def search(self, words: Sequence[str], limit: int) -> list[ScoredPassage]:
        """The best passages for any of `words` by full-text rank (BM25 on SQLite)."""
        ...

    def nearest(self, vector: Vectors, limit: int) -> list[ScoredPassage]:
        """The passages whose vectors are closest to `vector` (cosine), scanning them in
        chunks; empty when the collection keeps no vectors."""
        ...

    def passages(self, ids: Sequence[str]) -> list[Passage]:
        """The passages with these ids, in the order asked (unknown ids left out)."""
        ...


class Library(Protocol):
    """The collections of one place."""

    @property
    def location(self) -> str: ...

    def names(self) -> list[str]: ...

    def open(self, name: str) -> PassageIndex:
        """An existing collection; ConfigError naming the known ones when there is none."""
        ...

    def create(self, name: str, *, embeddings: bool) -> PassageIndex:
        """A new empty collection (ConfigError when it exists)."""
        ...

    def remove(self, name: str) -> None: ...


def checked_name(name: str) -> str:
    """A collection name, or ConfigError saying what a name may hold."""
    if not _COLLECTION_NAME.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not a valid collection name: use 1 to 64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return name


def unknown_collection(name: str, known: Sequence[str], location: str) -> ConfigError:
    listed = ", ".join(known) if known else "none yet"
    return ConfigError(
        f"no document collection named {name!r} in {location} (collections: {listed}); "
        f"create it with `conclave docs add PATH... --collection {name}`"
    )
