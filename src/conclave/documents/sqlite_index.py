"""Collections as SQLite files (one per collection) with an FTS5 full-text index: no server.

Each collection is `<folder>/<name>.sqlite`: the `files` and `passages` tables, `passages_fts`
(an FTS5 index over the passages' title and text, porter-stemmed, kept in step by triggers) and,
for collections indexed with embeddings, `vectors` (one float32 MiniLM vector per passage).
Search ranks with FTS5's `bm25()`, the title counting twice the text. Every method opens its
own connection, so a collection can be searched from any thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

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

SUFFIX = ".sqlite"
VECTOR_CHUNK = 4096
"""Vectors read at a time by `nearest`: memory stays bounded whatever the collection's size."""
TITLE_WEIGHT = 2.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, kind TEXT NOT NULL, title TEXT NOT NULL,
    chars INTEGER NOT NULL, passages INTEGER NOT NULL, indexed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS passages (
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, path TEXT NOT NULL,
    start_char INTEGER NOT NULL, end_char INTEGER NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_path ON passages (path);
CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5 (
    title, text, content='passages', content_rowid='rowid', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS passages_added AFTER INSERT ON passages BEGIN
    INSERT INTO passages_fts (rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;
CREATE TRIGGER IF NOT EXISTS passages_dropped AFTER DELETE ON passages BEGIN
    INSERT INTO passages_fts (passages_fts, rowid, title, text)
    VALUES ('delete', old.rowid, old.title, old.text);
    DELETE FROM vectors WHERE rowid = old.rowid;
END;
CREATE TABLE IF NOT EXISTS vectors (rowid INTEGER PRIMARY KEY, vector BLOB NOT NULL);
"""

_PASSAGE_COLUMNS = "p.id, p.path, p.start_char, p.end_char, p.title, p.text"


def _passage(row: Sequence[object]) -> Passage:
    id_, path, start, end, title, text = row[:6]
    return Passage(
        id=str(id_), path=str(path), start=int(str(start)), end=int(str(end)),
        title=str(title), text=str(text),
    )  # fmt: skip


class SqliteCollection:
    """One collection in its SQLite file."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def info(self) -> CollectionInfo:
        with self._connect() as connection:
            meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
            files = connection.execute("SELECT COUNT(*) FROM files").fetchone()[0]
            passages = connection.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        return CollectionInfo(
            name=self._name,
            location=str(self.path),
            files=files,
            passages=passages,
            embeddings=meta.get("embeddings") == "1",
            created_at=datetime.fromisoformat(meta["created_at"]),
        )

    def files(self) -> list[IndexedFile]:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT path, sha256, kind, title, chars, passages, indexed_at FROM files "
                "ORDER BY path"
            ).fetchall()
        return [
            IndexedFile(
                path=path,
                sha256=sha256,
                kind=kind,
                title=title,
                chars=chars,
                passages=passages,
                indexed_at=datetime.fromisoformat(indexed_at),
            )
            for path, sha256, kind, title, chars, passages, indexed_at in rows
        ]

    def file_hash(self, path: str) -> str | None:
        with self._connect() as connection:
            row = connection.execute("SELECT sha256 FROM files WHERE path = ?", (path,)).fetchone()
        return None if row is None else str(row[0])

    @contextmanager
    def writing(self) -> Iterator[_SqliteWriter]:
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteWriter(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def search(self, words: Sequence[str], limit: int) -> list[ScoredPassage]:
        if not words:
            return []
        query = " OR ".join('"' + word.replace('"', '""') + '"' for word in words)
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT {_PASSAGE_COLUMNS}, bm25(passages_fts, ?, 1.0) AS rank "
                "FROM passages_fts JOIN passages p ON p.rowid = passages_fts.rowid "
                "WHERE passages_fts MATCH ? ORDER BY rank LIMIT ?",
                (TITLE_WEIGHT, query, limit),
            ).fetchall()
        return [ScoredPassage(passage=_passage(row), score=-float(row[6])) for row in rows]

    def nearest(self, vector: Vectors, limit: int) -> list[ScoredPassage]:
        with self._connect() as connection:
            cursor = connection.execute("SELECT rowid, vector FROM vectors")
            chunks = iter(lambda: cursor.fetchmany(VECTOR_CHUNK), [])
            best = closest(chunks, vector, limit)
            found: list[ScoredPassage] = []
            for rowid, score in best:
                row = connection.execute(
                    f"SELECT {_PASSAGE_COLUMNS} FROM passages p WHERE p.rowid = ?", (rowid,)
                ).fetchone()
                if row is not None:
                    found.append(ScoredPassage(passage=_passage(row), score=score))
        return found

    def passages(self, ids: Sequence[str]) -> list[Passage]:
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT {_PASSAGE_COLUMNS} FROM passages p WHERE p.id IN ({marks})", tuple(ids)
            ).fetchall()
        by_id = {row[0]: _passage(row) for row in rows}
        return [by_id[id_] for id_ in ids if id_ in by_id]

    def _connect(self) -> closing[sqlite3.Connection]:
        return closing(_open(self.path))


def _open(path: Path) -> sqlite3.Connection:
    try:
        connection = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        connection.execute("PRAGMA journal_mode = WAL")
    except sqlite3.Error as exc:
        raise ConfigError(
            f"{path}: the collection's database cannot be opened ({exc}); check the file and "
            "its folder's permissions"
        ) from None
    return connection


class _SqliteWriter:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def replace_file(
        self, file: IndexedFile, passages: Sequence[Passage], vectors: Vectors | None
    ) -> None:
        self.remove_file(file.path)
        self._connection.execute(
            "INSERT INTO files (path, sha256, kind, title, chars, passages, indexed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                file.path,
                file.sha256,
                file.kind,
                file.title,
                file.chars,
                file.passages,
                file.indexed_at.isoformat(),
            ),
        )
        for number, passage in enumerate(passages):
            cursor = self._connection.execute(
                "INSERT INTO passages (id, path, start_char, end_char, title, text) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (passage.id, passage.path, passage.start, passage.end, passage.title, passage.text),
            )
            if vectors is not None:
                self._connection.execute(
                    "INSERT INTO vectors (rowid, vector) VALUES (?, ?)",
                    (cursor.lastrowid, vectors[number].tobytes()),
                )

    def remove_file(self, path: str) -> bool:
        self._connection.execute("DELETE FROM passages WHERE path = ?", (path,))
        cursor = self._connection.execute("DELETE FROM files WHERE path = ?", (path,))
        return cursor.rowcount > 0


class SqliteLibrary:
    """The collections kept as SQLite files in one folder (by default
    `<conclave home>/collections`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def location(self) -> str:
        return str(self.folder)

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(path.stem for path in self.folder.glob(f"*{SUFFIX}"))

    def open(self, name: str) -> PassageIndex:
        path = self._path(name)
        if not path.is_file():
            raise unknown_collection(name, self.names(), self.location)
        return SqliteCollection(path, name)

    def create(self, name: str, *, embeddings: bool) -> PassageIndex:
        path = self._path(name)
        if path.exists():
            raise ConfigError(f"the collection {name!r} already exists ({path})")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create {self.folder} for document collections "
                f"({exc.strerror or exc}); set CONCLAVE_HOME to a folder you can write"
            ) from None
        partial = path.with_suffix(".creating")
        partial.unlink(missing_ok=True)
        with closing(_open(partial)) as connection:
            connection.executescript(_SCHEMA)
            connection.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("name", name),
                    ("embeddings", "1" if embeddings else "0"),
                    ("created_at", datetime.now(UTC).isoformat()),
                ],
            )
        partial.replace(path)  # a collection appears whole or not at all
        return SqliteCollection(path, name)

    def remove(self, name: str) -> None:
        path = self._path(name)
        if not path.is_file():
            raise unknown_collection(name, self.names(), self.location)
        for extra in ("-wal", "-shm", "-journal"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
        path.unlink()

    def _path(self, name: str) -> Path:
        return self.folder / f"{checked_name(name)}{SUFFIX}"
