"""Collections on SQLite and PostgreSQL: adding, re-indexing by content hash, dropping files,
full-text search, and adds that fail leaving nothing half-indexed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from conclave.documents import add_documents, open_library, remove_documents, search_passages
from conclave.documents.index import Library
from conclave.documents.postgres_index import PostgresLibrary
from conclave.errors import ConfigError
from conclave.settings import Settings
from conclave.store.store_settings import StoreSettings
from store.postgres import fresh_database

from .conftest import write_pdf

TOPICS = {
    "bees.md": "# Bees\n\nA honey bee colony keeps one queen, who lays up to two thousand eggs "
    "a day.",
    "tides.txt": "Spring tides happen twice a month, when the sun and the moon are in line.",
    "bread.html": "<html><head><title>Bread</title></head><body><p>Sourdough rises with "
    "wild yeast and lactic bacteria over twelve hours.</p></body></html>",
}


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in TOPICS.items():
        (folder / name).write_text(text, "utf-8")
    write_pdf(folder / "lighthouse.pdf")
    return folder


def test_a_folder_is_indexed_and_searched(library: Library, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    (corpus / "photo.jpg").write_bytes(b"\xff\xd8")
    report = add_documents(library, "home", [corpus])
    assert report.created
    assert len(report.added) == 4
    assert report.skipped == (str(corpus / "photo.jpg"),)  # listed, not silently ignored
    info = library.open("home").info()
    assert (info.files, info.passages) == (4, 4)
    hits = search_passages(library.open("home"), "How many eggs does the queen lay?", limit=3)
    assert hits[0].passage.path == str(corpus / "bees.md")
    assert hits[0].passage.title == "Bees"
    hits = search_passages(library.open("home"), "what does the keeper burn in the lamp", limit=3)
    assert hits[0].passage.path == str(corpus / "lighthouse.pdf")


def test_only_a_changed_file_is_indexed_again(library: Library, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    add_documents(library, "home", [corpus])
    index = library.open("home")
    before = {p.passage.path: p.passage.id for p in search_passages(index, "bee tides", limit=9)}
    again = add_documents(library, "home", [corpus])
    assert (again.added, again.updated, again.passages) == ((), (), 0)
    assert len(again.unchanged) == 4
    (corpus / "tides.txt").write_text("Neap tides follow a week after spring tides.", "utf-8")
    changed = add_documents(library, "home", [corpus])
    assert changed.updated == (str(corpus / "tides.txt"),)
    assert len(changed.unchanged) == 3
    assert changed.passages == 1
    after = {p.passage.path: p.passage.id for p in search_passages(index, "bee tides", limit=9)}
    assert after[str(corpus / "bees.md")] == before[str(corpus / "bees.md")]
    assert after[str(corpus / "tides.txt")] != before[str(corpus / "tides.txt")]
    assert search_passages(index, "sun moon line", limit=5) == []  # the old text is gone


def test_a_removed_file_can_be_dropped(library: Library, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    add_documents(library, "home", [corpus])
    (corpus / "bees.md").unlink()
    report = add_documents(library, "home", [corpus])
    assert report.missing == (str(corpus / "bees.md"),)
    index = library.open("home")
    assert remove_documents(index, [str(corpus / "bees.md")]) == [str(corpus / "bees.md")]
    assert index.info().files == 3
    assert search_passages(index, "queen bee eggs", limit=5) == []
    with pytest.raises(ConfigError, match="does not hold"):
        remove_documents(index, [str(corpus / "bees.md")])


def test_a_bad_file_stops_the_add_and_nothing_is_kept(library: Library, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    (corpus / "zz-scan.pdf").unlink(missing_ok=True)
    write_pdf(corpus / "zz-scan.pdf", pages=())
    with pytest.raises(ConfigError) as caught:
        add_documents(library, "home", [corpus])
    message = str(caught.value)
    assert str(corpus / "zz-scan.pdf") in message
    assert "OCR" in message
    assert "nothing was added" in message
    assert "home" not in library.names()  # the collection the add made is gone again

    (corpus / "zz-scan.pdf").unlink()
    add_documents(library, "home", [corpus])
    (corpus / "bees.md").write_text("# Bees\n\nDrones do not sting.", "utf-8")
    (corpus / "zz-binary.txt").write_bytes(b"\x00\x00\x00")
    with pytest.raises(ConfigError, match=r"zz-binary\.txt: the file is binary"):
        add_documents(library, "home", [corpus])
    index = library.open("home")
    assert index.info().files == 4  # as before the failed add
    assert search_passages(index, "drones sting", limit=5) == []  # bees.md not re-indexed
    assert search_passages(index, "queen eggs", limit=1)[0].passage.text.endswith("a day.")


def test_empty_folders_and_unknown_collections_are_named(library: Library, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"empty: no documents to index"):
        add_documents(library, "home", [tmp_path / "empty"])
    with pytest.raises(ConfigError, match="no such file or folder"):
        add_documents(library, "home", [tmp_path / "nowhere"])
    add_documents(library, "home", [write_corpus(tmp_path / "corpus")])
    with pytest.raises(
        ConfigError, match=r"no document collection named 'nope'.*collections: home"
    ):
        library.open("nope")
    with pytest.raises(ConfigError, match="not a valid collection name"):
        library.open("../etc")
    library.remove("home")
    assert library.names() == []


def test_collections_live_in_the_stores_postgresql_when_it_is_one(
    postgres_server: str, tmp_path: Path
) -> None:

    url = fresh_database(postgres_server)
    library = open_library(
        Settings(home=tmp_path / "home"), StoreSettings(url=SecretStr(url), _env_file=None)
    )
    assert isinstance(library, PostgresLibrary)
    add_documents(library, "home", [write_corpus(tmp_path / "corpus")])
    hits = search_passages(library.open("home"), "queen eggs", limit=1)
    assert hits[0].passage.path.endswith("bees.md")
    assert not (tmp_path / "home" / "collections").exists()  # nothing on disk
    library.dispose()


def test_an_unreadable_file_is_named_and_nothing_is_kept(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    locked = corpus / "tides.txt"
    real_read = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        if path == locked:  # as a file without read permission does (root may read anything)
            raise PermissionError(13, "Permission denied")
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(ConfigError) as caught:
        add_documents(library, "home", [corpus])
    message = str(caught.value)
    assert f"{locked}: cannot be read (Permission denied); check its permissions" in message
    assert "nothing was added" in message
    assert "home" not in library.names()
