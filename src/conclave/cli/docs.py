"""`conclave docs add|list|show|search|remove`: the document collections answers are grounded in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from conclave.cli.common import err, fail, out
from conclave.config import ConsensusConfig, RetrievalMode
from conclave.consensus.transcript import Transcript
from conclave.documents import (
    AddReport,
    add_documents,
    open_library,
    remove_documents,
    search_passages,
)
from conclave.documents.indexing import missing_files
from conclave.errors import ConclaveError

DEFAULT_COLLECTION = "default"
SHOWN_SKIPPED = 5

docs_app = typer.Typer(
    no_args_is_help=True,
    help="Document collections: answers grounded in them cite their passages (ask --docs).",
)

CollectionArgument = Annotated[str, typer.Argument(help="The collection's name.")]


DocsOption = Annotated[
    str | None,
    typer.Option(
        "--docs",
        "-d",
        help="Ground the answer in this document collection (see `conclave docs`): passages "
        "given to the panel, citations checked, footnotes printed.",
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(docs_app, name="docs")


def with_documents(config: ConsensusConfig, collection: str | None) -> ConsensusConfig:
    """`config` grounded in `collection` (its other `documents` settings kept), or as it is."""
    if collection is None:
        return config
    kept = config.documents.model_dump() if config.documents is not None else {}
    try:
        return config.with_changes(documents={**kept, "collection": collection})
    except ConclaveError as exc:
        fail(str(exc))


def print_footnotes(transcript: Transcript) -> None:
    """The passages a grounded answer cites, as numbered footnotes (file, span, snippet); a
    note when it abstained."""
    if transcript.abstained:
        retrieval = transcript.retrieval
        where = f" of {retrieval.collection!r}" if retrieval is not None else ""
        err.print(f"(no passage{where} holds the answer)", style="dim", markup=False)
        return
    shown: set[int] = set()
    lines = []
    for citation in transcript.citations:
        if citation.marker in shown:
            continue
        shown.add(citation.marker)
        lines.append(
            f"[{citation.marker}] {citation.title}: {citation.path}, characters "
            f'{citation.start}-{citation.end}\n    "{citation.snippet}"'
        )
    if lines:
        out.print("\n" + "\n".join(lines), markup=False)


@docs_app.command("add")
def docs_add(
    paths: Annotated[
        list[Path], typer.Argument(help="Files and folders (.txt, .md, .html, .pdf).")
    ],
    collection: Annotated[
        str, typer.Option("--collection", "-C", help="The collection to add to (made if new).")
    ] = DEFAULT_COLLECTION,
    embeddings: Annotated[
        bool,
        typer.Option(
            help="Keep a MiniLM vector per passage, for hybrid retrieval (a new collection "
            "only; about 25 ms per passage)."
        ),
    ] = False,
) -> None:
    """Index documents into a collection; a file indexed before is read again only if its
    content changed."""
    try:
        report = add_documents(open_library(), collection, paths, embeddings=embeddings)
    except ConclaveError as exc:
        fail(str(exc))
    _print_add(report)


def _print_add(report: AddReport) -> None:
    verb = "made and filled" if report.created else "updated"
    out.print(
        f"{report.collection}: {verb}: {len(report.added)} file(s) added, "
        f"{len(report.updated)} re-indexed, {len(report.unchanged)} unchanged; "
        f"{report.passages} passage(s) written",
        markup=False,
    )
    if report.skipped:
        shown = ", ".join(report.skipped[:SHOWN_SKIPPED])
        more = len(report.skipped) - SHOWN_SKIPPED
        err.print(
            f"skipped {len(report.skipped)} file(s) of other types: {shown}"
            + (f" and {more} more" if more > 0 else ""),
            markup=False,
        )
    if report.missing:
        err.print(
            f"{len(report.missing)} indexed file(s) no longer exist; drop them with "
            f"`conclave docs remove {report.collection} --missing`",
            markup=False,
        )


@docs_app.command("list")
def docs_list() -> None:
    """Every collection with its size."""
    try:
        library = open_library()
        infos = [library.open(name).info() for name in library.names()]
    except ConclaveError as exc:
        fail(str(exc))
    if not infos:
        err.print(
            f"no collections yet in {library.location}; make one with "
            "`conclave docs add PATH... --collection NAME`",
            markup=False,
        )
        return
    table = Table("collection", "files", "passages", "embeddings", "created")
    for info in infos:
        table.add_row(
            escape(info.name),
            str(info.files),
            str(info.passages),
            "yes" if info.embeddings else "no",
            info.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(table)
    err.print(f"kept in {library.location}", markup=False)


@docs_app.command("show")
def docs_show(collection: CollectionArgument) -> None:
    """A collection's files: type, passages, when indexed; files gone from disk flagged."""
    try:
        index = open_library().open(collection)
        info = index.info()
        files = index.files()
    except ConclaveError as exc:
        fail(str(exc))
    table = Table("type", "passages", "indexed", "sha256", "file")
    for file in files:
        gone = "" if Path(file.path).exists() else " [red](missing)[/red]"
        table.add_row(
            file.kind,
            str(file.passages),
            file.indexed_at.strftime("%Y-%m-%d %H:%M"),
            file.sha256[:12],
            escape(file.path) + gone,
        )
    out.print(table)
    err.print(
        f"{info.name}: {info.files} file(s), {info.passages} passage(s), embeddings "
        f"{'yes' if info.embeddings else 'no'}; kept in {info.location}",
        markup=False,
    )


@docs_app.command("search")
def docs_search(
    collection: CollectionArgument,
    query: Annotated[str, typer.Argument(help="What to look for.")],
    limit: Annotated[int, typer.Option("--limit", "-k", min=1, max=50)] = 5,
    retrieval: Annotated[
        RetrievalMode, typer.Option(help="bm25, or hybrid (collections with embeddings).")
    ] = "bm25",
) -> None:
    """The passages a grounded answer would be given for QUERY, best first."""
    try:
        hits = search_passages(open_library().open(collection), query, limit=limit, mode=retrieval)
    except ConclaveError as exc:
        fail(str(exc))
    if not hits:
        err.print("no passage matches", markup=False)
    for number, hit in enumerate(hits, start=1):
        passage = hit.passage
        out.print(
            f"[{number}] {passage.title} ({passage.path}, characters "
            f"{passage.start}-{passage.end}; score {hit.score:.3g})\n    {passage.snippet(40)}",
            markup=False,
        )


@docs_app.command("remove")
def docs_remove(
    collection: CollectionArgument,
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Files to drop from the collection (default: the whole collection)."),
    ] = None,
    missing: Annotated[
        bool, typer.Option("--missing", help="Drop the files that no longer exist on disk.")
    ] = False,
) -> None:
    """Remove a whole collection, or some of its files."""
    try:
        library = open_library()
        if not paths and not missing:
            library.remove(collection)
            out.print(f"removed the collection {collection}", markup=False)
            return
        index = library.open(collection)
        dropped = remove_documents(
            index, [*(paths or []), *(missing_files(index) if missing else [])]
        )
    except ConclaveError as exc:
        fail(str(exc))
    out.print(f"{collection}: dropped {len(dropped)} file(s)", markup=False)
