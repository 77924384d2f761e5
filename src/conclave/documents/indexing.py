"""Adding documents to a collection, and dropping them.

`add_documents` takes files and folders (searched recursively; hidden files and folders left
out, files of other types listed as skipped), reads each file once, and indexes only those whose
content (sha256) changed since they were last indexed. The whole add is one transaction: a file
that cannot be read or parsed stops it with an error naming the file, and nothing of that add
is kept (a collection the add created is removed again). One file is in memory at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from conclave.documents.index import IndexedFile, Library, PassageIndex
from conclave.documents.parsing import (
    document_kind,
    parse_file,
    read_document,
    supported_suffixes,
)
from conclave.documents.passages import split_passages
from conclave.documents.vectors import embed_texts, passage_embedder
from conclave.errors import ConfigError
from conclave.types import Frozen

FileOutcome = Literal["added", "updated", "unchanged"]


class AddReport(Frozen):
    """What an add did, file by file."""

    collection: str
    created: bool
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    """Files found in the folders given whose type conclave does not read."""
    missing: tuple[str, ...] = ()
    """Files of the collection that no longer exist (drop them with `docs remove --missing`)."""
    passages: int = 0
    """Passages written by this add."""


def add_documents(
    library: Library,
    collection: str,
    paths: Sequence[Path],
    *,
    embeddings: bool = False,
    on_file: Callable[[Path, FileOutcome], None] = lambda path, outcome: None,
) -> AddReport:
    """Index `paths` into `collection`, creating it (with MiniLM vectors when `embeddings`)
    if it does not exist."""
    files, skipped = find_documents(paths)
    created = collection not in library.names()
    if not created:
        index = library.open(collection)
        if embeddings and not index.info().embeddings:
            raise ConfigError(
                f"the collection {collection!r} was made without embeddings; add the files to "
                "a new collection with --embeddings (embeddings are computed for every passage)"
            )
        embeddings = index.info().embeddings
    embedder = passage_embedder() if embeddings else None
    if created:
        index = library.create(collection, embeddings=embeddings)
    outcomes: dict[FileOutcome, list[str]] = {"added": [], "updated": [], "unchanged": []}
    written = 0
    try:
        with index.writing() as writer:
            for path in files:
                raw = read_document(path)
                sha256 = hashlib.sha256(raw).hexdigest()
                known = index.file_hash(str(path))
                if known == sha256:
                    outcome: FileOutcome = "unchanged"
                else:
                    document = parse_file(path, raw)
                    passages = list(split_passages(document))
                    vectors = None
                    if embedder is not None:
                        vectors = embed_texts(embedder, [f"{p.title}\n{p.text}" for p in passages])
                    record = IndexedFile(
                        path=str(path),
                        sha256=sha256,
                        kind=document.kind,
                        title=document.title,
                        chars=len(document.text),
                        passages=len(passages),
                        indexed_at=datetime.now(UTC),
                    )
                    writer.replace_file(record, passages, vectors)
                    written += len(passages)
                    outcome = "added" if known is None else "updated"
                outcomes[outcome].append(str(path))
                on_file(path, outcome)
    except BaseException as exc:
        if created:
            library.remove(collection)
        if isinstance(exc, ConfigError):
            raise ConfigError(
                f"{exc}\nnothing was added to the collection {collection!r}: fix that file or "
                "leave it out, then add again"
            ) from None
        raise
    return AddReport(
        collection=collection,
        created=created,
        added=tuple(outcomes["added"]),
        updated=tuple(outcomes["updated"]),
        unchanged=tuple(outcomes["unchanged"]),
        skipped=tuple(str(path) for path in skipped),
        missing=tuple(missing_files(index)),
        passages=written,
    )


def find_documents(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """The documents to index under `paths` (absolute, each once, sorted within a folder), and
    the files of the folders that are of another type. A file named directly must be of a type
    conclave reads; a folder must hold at least one such file."""
    if not paths:
        raise ConfigError("no documents given: name files or folders to add")
    files: list[Path] = []
    skipped: list[Path] = []
    for given in paths:
        path = given.expanduser().resolve()
        if path.is_dir():
            found, other = _folder_documents(path)
            if not found:
                raise ConfigError(
                    f"{given}: no documents to index in this folder (conclave reads "
                    f"{supported_suffixes()} files); check the path"
                )
            files.extend(found)
            skipped.extend(other)
        elif path.is_file():
            if document_kind(path) is None:
                raise ConfigError(
                    f"{given}: conclave cannot read this type of file; it indexes "
                    f"{supported_suffixes()} (convert the file, or leave it out)"
                )
            files.append(path)
        else:
            raise ConfigError(f"{given}: no such file or folder")
    return list(dict.fromkeys(files)), skipped


def _folder_documents(folder: Path) -> tuple[list[Path], list[Path]]:
    found: list[Path] = []
    other: list[Path] = []
    for path in sorted(folder.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if hidden or not path.is_file():
            continue
        (found if document_kind(path) is not None else other).append(path)
    return found, other


def missing_files(index: PassageIndex) -> list[str]:
    """The collection's files that no longer exist on disk."""
    return [file.path for file in index.files() if not Path(file.path).exists()]


def remove_documents(index: PassageIndex, paths: Sequence[str]) -> list[str]:
    """Drop these files from the collection (in one transaction); returns those it held.
    A path given that the collection does not hold is an error naming it; nothing is dropped."""
    wanted = [str(Path(path).expanduser().resolve()) for path in paths]
    held = {file.path for file in index.files()}
    unknown = [path for path, resolved in zip(paths, wanted, strict=True) if resolved not in held]
    if unknown:
        raise ConfigError(
            f"the collection {index.name!r} does not hold {', '.join(unknown)}; "
            f"`conclave docs show {index.name}` lists its files"
        )
    with index.writing() as writer:
        for path in wanted:
            writer.remove_file(path)
    return wanted
