"""Collections in PostgreSQL, beside the run store, searched with its full-text search.

Three tables, created on first use (idempotently, under an advisory lock): `document_collections`,
`document_files` and `document_passages`, whose `search` column is a stored `tsvector` (English
stemming, the title weighted above the text) with a GIN index. A search sends the question's
words joined by "or" through `websearch_to_tsquery` (which stems them, drops stop words and
never fails on odd input) and ranks by `ts_rank_cd`. Vectors for hybrid retrieval are kept as
`bytea` and scanned in chunks with a server-side cursor.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from conclave.consensus.citations import Passage
from conclave.documents.index import (
    CollectionInfo,
    IndexedFile,
    PassageIndex,
    ScoredPassage,
    checked_name,
    unknown_collection,
)
from conclave.documents.vectors import closest
from conclave.errors import ConfigError

if TYPE_CHECKING:
    from conclave.documents.index import Vectors

VECTOR_CHUNK = 4096
_SCHEMA_LOCK = 7263102

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS document_collections (
        name TEXT PRIMARY KEY, embeddings BOOLEAN NOT NULL, created_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS document_files (
        collection TEXT NOT NULL REFERENCES document_collections (name) ON DELETE CASCADE,
        path TEXT NOT NULL, sha256 TEXT NOT NULL, kind TEXT NOT NULL, title TEXT NOT NULL,
        chars INTEGER NOT NULL, passages INTEGER NOT NULL, indexed_at TIMESTAMP NOT NULL,
        PRIMARY KEY (collection, path))""",
    """CREATE TABLE IF NOT EXISTS document_passages (
        seq BIGSERIAL PRIMARY KEY, collection TEXT NOT NULL, id TEXT NOT NULL,
        path TEXT NOT NULL, start_char INTEGER NOT NULL, end_char INTEGER NOT NULL,
        title TEXT NOT NULL, text TEXT NOT NULL, vector BYTEA,
        search TSVECTOR GENERATED ALWAYS AS (
            setweight(to_tsvector('english', title), 'A') ||
            setweight(to_tsvector('english', text), 'B')) STORED,
        UNIQUE (collection, id),
        FOREIGN KEY (collection, path) REFERENCES document_files (collection, path)
            ON DELETE CASCADE)""",
    """CREATE INDEX IF NOT EXISTS document_passages_search
        ON document_passages USING GIN (search)""",
    """CREATE INDEX IF NOT EXISTS document_passages_path
        ON document_passages (collection, path)""",
)

_PASSAGE_COLUMNS = "id, path, start_char, end_char, title, text"


def _passage(row: Sequence[Any]) -> Passage:
    id_, path, start, end, title, body = row[:6]
    return Passage(id=id_, path=path, start=start, end=end, title=title, text=body)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


class PostgresCollection:
    """One collection's rows in the document tables."""

    def __init__(self, engine: Engine, name: str, location: str) -> None:
        self._engine = engine
        self._name = name
        self._location = location

    @property
    def name(self) -> str:
        return self._name

    def info(self) -> CollectionInfo:
        with self._engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT embeddings, created_at, "
                    "(SELECT COUNT(*) FROM document_files WHERE collection = :c), "
                    "(SELECT COUNT(*) FROM document_passages WHERE collection = :c) "
                    "FROM document_collections WHERE name = :c"
                ),
                {"c": self._name},
            ).one()
        return CollectionInfo(
            name=self._name,
            location=self._location,
            files=row[2],
            passages=row[3],
            embeddings=row[0],
            created_at=row[1].replace(tzinfo=UTC),
        )

    def files(self) -> list[IndexedFile]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT path, sha256, kind, title, chars, passages, indexed_at "
                    "FROM document_files WHERE collection = :c ORDER BY path"
                ),
                {"c": self._name},
            ).all()
        return [
            IndexedFile(
                path=row[0],
                sha256=row[1],
                kind=row[2],
                title=row[3],
                chars=row[4],
                passages=row[5],
                indexed_at=row[6].replace(tzinfo=UTC),
            )
            for row in rows
        ]

    def file_hash(self, path: str) -> str | None:
        with self._engine.connect() as connection:
            found = connection.execute(
                text("SELECT sha256 FROM document_files WHERE collection = :c AND path = :p"),
                {"c": self._name, "p": path},
            ).scalar()
        return None if found is None else str(found)

    @contextmanager
    def writing(self) -> Iterator[_PostgresWriter]:
        with self._engine.begin() as connection:
            yield _PostgresWriter(connection, self._name)

    def search(self, words: Sequence[str], limit: int) -> list[ScoredPassage]:
        if not words:
            return []
        with self._engine.connect() as connection:
            rows = connection.execute(
                text(
                    f"SELECT {_PASSAGE_COLUMNS}, ts_rank_cd(search, query) AS rank "
                    "FROM document_passages, websearch_to_tsquery('english', :q) AS query "
                    "WHERE collection = :c AND search @@ query "
                    "ORDER BY rank DESC, seq LIMIT :limit"
                ),
                {"q": " or ".join(words), "c": self._name, "limit": limit},
            ).all()
        return [ScoredPassage(passage=_passage(row), score=float(row[6])) for row in rows]

    def nearest(self, vector: Vectors, limit: int) -> list[ScoredPassage]:
        with self._engine.connect() as connection:
            result = connection.execution_options(stream_results=True).execute(
                text(
                    "SELECT seq, vector FROM document_passages "
                    "WHERE collection = :c AND vector IS NOT NULL"
                ),
                {"c": self._name},
            )
            chunks = (
                [(row[0], row[1]) for row in chunk] for chunk in result.partitions(VECTOR_CHUNK)
            )
            best = closest(chunks, vector, limit)
            rows = connection.execute(
                text(f"SELECT seq, {_PASSAGE_COLUMNS} FROM document_passages WHERE seq = ANY(:s)"),
                {"s": [seq for seq, _ in best]},
            ).all()
        by_seq = {row[0]: _passage(row[1:]) for row in rows}
        return [
            ScoredPassage(passage=by_seq[seq], score=score) for seq, score in best if seq in by_seq
        ]

    def passages(self, ids: Sequence[str]) -> list[Passage]:
        if not ids:
            return []
        with self._engine.connect() as connection:
            rows = connection.execute(
                text(
                    f"SELECT {_PASSAGE_COLUMNS} FROM document_passages "
                    "WHERE collection = :c AND id = ANY(:ids)"
                ),
                {"c": self._name, "ids": list(ids)},
            ).all()
        by_id = {row[0]: _passage(row) for row in rows}
        return [by_id[id_] for id_ in ids if id_ in by_id]


class _PostgresWriter:
    def __init__(self, connection: Connection, collection: str) -> None:
        self._connection = connection
        self._collection = collection

    def replace_file(
        self, file: IndexedFile, passages: Sequence[Passage], vectors: Vectors | None
    ) -> None:
        self.remove_file(file.path)
        self._connection.execute(
            text(
                "INSERT INTO document_files "
                "(collection, path, sha256, kind, title, chars, passages, indexed_at) "
                "VALUES (:c, :path, :sha256, :kind, :title, :chars, :passages, :at)"
            ),
            {
                "c": self._collection,
                "path": file.path,
                "sha256": file.sha256,
                "kind": file.kind,
                "title": file.title,
                "chars": file.chars,
                "passages": file.passages,
                "at": _naive_utc(file.indexed_at),
            },
        )
        if not passages:
            return
        self._connection.execute(
            text(
                "INSERT INTO document_passages "
                "(collection, id, path, start_char, end_char, title, text, vector) "
                "VALUES (:c, :id, :path, :start, :end, :title, :text, :vector)"
            ),
            [
                {
                    "c": self._collection,
                    "id": passage.id,
                    "path": passage.path,
                    "start": passage.start,
                    "end": passage.end,
                    "title": passage.title,
                    "text": passage.text,
                    "vector": vectors[number].tobytes() if vectors is not None else None,
                }
                for number, passage in enumerate(passages)
            ],
        )

    def remove_file(self, path: str) -> bool:
        self._connection.execute(
            text("DELETE FROM document_passages WHERE collection = :c AND path = :p"),
            {"c": self._collection, "p": path},
        )
        result = self._connection.execute(
            text("DELETE FROM document_files WHERE collection = :c AND path = :p"),
            {"c": self._collection, "p": path},
        )
        return bool(result.rowcount)


class PostgresLibrary:
    """The collections kept in a PostgreSQL database (the run store's, when it is PostgreSQL)."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self._location = parsed.render_as_string(hide_password=True)
        try:
            self._engine = create_engine(url, pool_pre_ping=True)
            with self._engine.begin() as connection:
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
                for statement in _SCHEMA:
                    connection.execute(text(statement))
        except (SQLAlchemyError, ImportError) as exc:
            raise ConfigError(
                f"cannot use the document collections at {self._location}: {exc}; check "
                "CONCLAVE_STORE_URL"
            ) from None

    @property
    def location(self) -> str:
        return self._location

    def names(self) -> list[str]:
        with self._engine.connect() as connection:
            return list(
                connection.execute(
                    text("SELECT name FROM document_collections ORDER BY name")
                ).scalars()
            )

    def open(self, name: str) -> PassageIndex:
        if checked_name(name) not in self.names():
            raise unknown_collection(name, self.names(), self._location)
        return PostgresCollection(self._engine, name, self._location)

    def create(self, name: str, *, embeddings: bool) -> PassageIndex:
        if checked_name(name) in self.names():
            raise ConfigError(f"the collection {name!r} already exists ({self._location})")
        with self._engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO document_collections (name, embeddings, created_at) "
                    "VALUES (:n, :e, :at)"
                ),
                {"n": name, "e": embeddings, "at": _naive_utc(datetime.now(UTC))},
            )
        return PostgresCollection(self._engine, name, self._location)

    def remove(self, name: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                text("DELETE FROM document_passages WHERE collection = :n"), {"n": name}
            )
            deleted = connection.execute(
                text("DELETE FROM document_collections WHERE name = :n"), {"n": name}
            ).rowcount
        if not deleted:
            raise unknown_collection(name, self.names(), self._location)

    def dispose(self) -> None:
        self._engine.dispose()
