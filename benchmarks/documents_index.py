"""How long a document collection of 10,000+ passages takes to index and to search, and the
process's peak memory while it does (the add reads one file at a time).

    .venv/bin/python benchmarks/documents_index.py                  # the Python documentation
    .venv/bin/python benchmarks/documents_index.py --embeddings     # and hybrid retrieval
    .venv/bin/python benchmarks/documents_index.py --corpus DIR --min-passages 10000

The corpus is Debian's Python documentation (`apt-get install python3-doc`: the HTML of every
page under /usr/share/doc/python3.11/html); with fewer passages than `--min-passages` in it,
copies of its pages are added (under other names) until the collection holds that many. The
queries are questions about the standard library. Printed: files, passages, index time (and
passages per second), the time of adding the same folder again (nothing changed: only hashes
read), query times for BM25 (and hybrid) as median and 95th percentile, peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from conclave.config import RetrievalMode
from conclave.documents import add_documents, search_passages
from conclave.documents.sqlite_index import SqliteLibrary

PYTHON_DOCS = Path("/usr/share/doc/python3.11/html")
QUESTIONS = (
    "How do I open a ZIP file for appending?",
    "What does math.isqrt return?",
    "How can I read a CSV file with a header row?",
    "Which exception is raised when a key is missing from a dict?",
    "How do I create a temporary directory that is removed afterwards?",
    "What is the default recursion limit?",
    "How does asyncio.gather handle exceptions?",
    "How do I format a datetime as ISO 8601?",
    "What does functools.lru_cache do with keyword arguments?",
    "How do I start a subprocess and read its output?",
    "Which hash algorithms does hashlib guarantee?",
    "How do I parse command line options with argparse subcommands?",
    "What does the walrus operator do?",
    "How do I sort a list of dictionaries by a key?",
    "What is a context manager?",
    "How are f-strings evaluated?",
    "How do I compare floating point numbers for closeness?",
    "What does the secrets module provide?",
    "How can a thread pool run blocking functions?",
    "What is the difference between bytes and bytearray?",
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def corpus_folder(source: Path, target: Path, min_passages: int, per_page: float) -> int:
    """Copy `source`'s HTML pages into `target`, repeating them (renamed) until about
    `min_passages` passages; returns the number of copies of the whole set."""
    pages = sorted(source.rglob("*.html"))
    needed = max(1, round(min_passages / max(per_page * len(pages), 1) + 0.49))
    for copy in range(needed):
        for page in pages:
            relative = page.relative_to(source)
            destination = target / f"copy{copy}" / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page, destination)
    return needed


def timed_queries(library: SqliteLibrary, mode: RetrievalMode) -> list[float]:
    index = library.open("bench")
    search_passages(index, QUESTIONS[0], limit=5, mode=mode)  # warm: the model loads once
    times = []
    for question in QUESTIONS * 3:
        began = time.perf_counter()
        search_passages(index, question, limit=5, mode=mode)
        times.append(time.perf_counter() - began)
    return times


def describe(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"median {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=PYTHON_DOCS)
    parser.add_argument("--min-passages", type=int, default=10_000)
    parser.add_argument("--embeddings", action="store_true", help="also measure hybrid")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        raise SystemExit(f"{args.corpus} not found: apt-get install python3-doc, or --corpus DIR")
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "corpus"
        # About 18 passages per page of the Python documentation (measured: 9632 passages
        # from its 530 pages); the real count is printed below.
        copies = corpus_folder(args.corpus, folder, args.min_passages, per_page=18.0)
        library = SqliteLibrary(Path(work) / "collections")
        began = time.perf_counter()
        report = add_documents(library, "bench", [folder], embeddings=args.embeddings)
        index_s = time.perf_counter() - began
        info = library.open("bench").info()
        print(
            f"indexed {info.files} files ({copies} cop{'y' if copies == 1 else 'ies'} of "
            f"{args.corpus}), {info.passages} passages in {index_s:.1f} s "
            f"({info.passages / index_s:.0f} passages/s)"
            + (", with MiniLM vectors" if args.embeddings else "")
        )
        size_mb = sum(p.stat().st_size for p in (Path(work) / "collections").iterdir()) / 2**20
        print(f"collection file: {size_mb:.1f} MB; skipped files: {len(report.skipped)}")
        began = time.perf_counter()
        again = add_documents(library, "bench", [folder])
        print(
            f"added again, nothing changed: {len(again.unchanged)} files unchanged in "
            f"{time.perf_counter() - began:.1f} s"
        )
        bm25 = timed_queries(library, "bm25")
        print(f"bm25 query ({len(QUESTIONS) * 3} questions): {describe(bm25)}")
        if args.embeddings:
            hybrid = timed_queries(library, "hybrid")
            print(f"hybrid query ({len(QUESTIONS) * 3} questions): {describe(hybrid)}")
        print(f"peak RSS of this process: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
