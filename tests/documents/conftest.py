"""Documents written for the tests (a PDF made with fpdf2), and collections on both databases:
SQLite files and a real PostgreSQL server started by the test run (see `store/postgres.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fpdf import FPDF

from conclave.documents.index import Library
from conclave.documents.postgres_index import PostgresLibrary
from conclave.documents.sqlite_index import SqliteLibrary
from server.conftest import serve  # noqa: F401  (the real-uvicorn server fixture, shared)
from store.conftest import postgres_server  # noqa: F401  (a real PostgreSQL, shared)
from store.postgres import fresh_database

PDF_PAGES = (
    "The lighthouse keeper lights the lamp at dusk. The lamp burns paraffin oil.",
    "In winter the keeper checks the lens every four hours and logs the weather.",
)


def write_pdf(path: Path, pages: tuple[str, ...] = PDF_PAGES, *, title: str = "") -> Path:
    """A real PDF with one page of text per entry (no text at all when `pages` is empty: a
    page with only a drawing, like a scan)."""
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for text in pages or ("",):
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
        else:
            pdf.rect(20, 20, 100, 60)
    pdf.output(str(path))
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """conclave's home (where collections are kept) in a temporary folder."""
    monkeypatch.setenv("CONCLAVE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "home"


@pytest.fixture(params=["sqlite", "postgresql"])
def library(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Library]:
    """An empty library of collections on each database."""
    if request.param == "sqlite":
        yield SqliteLibrary(tmp_path / "collections")
        return
    server: str = request.getfixturevalue("postgres_server")
    url = fresh_database(server).replace("postgresql://", "postgresql+psycopg://", 1)
    postgres = PostgresLibrary(url)
    yield postgres
    postgres.dispose()
