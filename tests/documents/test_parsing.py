"""Each document type parsed from a real file, and each bad file refused with a message that
names it and says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from conclave.documents import parse_file, split_passages
from conclave.documents.passages import MAX_WORDS
from conclave.errors import ConfigError

from .conftest import write_pdf

HTML = """<!DOCTYPE html>
<html><head><title>Ferry timetable</title><style>p { color: red }</style>
<script>var hidden = "do not index me";</script></head>
<body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<main>
<h1>Ferry timetable<a class="headerlink" href="#t">¶</a></h1>
<p>The first ferry leaves <b>Oban</b> at 07:15 every weekday.</p>
<h2>Fares</h2>
<table><tr><th>Ticket</th><th>Price</th></tr><tr><td>Adult</td><td>12 pounds</td></tr></table>
<ul><li>Bicycles travel free.</li><li>Dogs must be on a lead.</li></ul>
<pre>Oban  07:15
Mull  08:00</pre>
</main>
<footer>Copyright</footer></body></html>
"""


def test_text_is_kept_as_written(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("The shed key is under the blue pot.\n\nFeed the cat at six.\n", "utf-8")
    document = parse_file(path)
    assert document.kind == "txt"
    assert document.title == "notes"
    [passage] = split_passages(document)
    assert passage.text == "The shed key is under the blue pot.\n\nFeed the cat at six."
    assert path.read_text("utf-8")[passage.start : passage.end] == passage.text


def test_markdown_headings_title_the_passages(tmp_path: Path) -> None:
    intro = " ".join(["Alpine plants grow slowly in thin soil."] * 9)
    care = " ".join(["Water the saxifrage sparingly in summer."] * 9)
    path = tmp_path / "garden.md"
    path.write_text(f"# Rock garden\n\n{intro}\n\n## Watering *alpines*\n\n{care}\n", "utf-8")
    document = parse_file(path)
    assert document.title == "Rock garden"
    passages = list(split_passages(document))
    assert [p.title for p in passages] == ["Rock garden", "Watering alpines"]
    source = path.read_text("utf-8")
    for passage in passages:
        assert source[passage.start : passage.end] == passage.text  # spans are of the file
    assert passages[1].text.startswith("## Watering")


def test_html_keeps_the_main_text_and_its_headings(tmp_path: Path) -> None:
    path = tmp_path / "ferry.html"
    path.write_text(HTML, "utf-8")
    document = parse_file(path)
    assert document.title == "Ferry timetable"
    assert "do not index me" not in document.text
    assert "Home" not in document.text
    assert "Copyright" not in document.text
    assert "¶" not in document.text
    assert "The first ferry leaves Oban at 07:15 every weekday." in document.text
    assert "Adult | 12 pounds" in document.text
    assert "Oban  07:15\nMull  08:00" in document.text  # <pre> keeps its lines
    assert [h.title for h in document.headings] == ["Ferry timetable", "Fares"]
    assert document.title_at(document.text.index("Bicycles")) == "Fares"


def test_pdf_text_is_read_page_by_page(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "lighthouse.pdf", title="Keeper's manual")
    document = parse_file(path)
    assert document.kind == "pdf"
    assert "lights the lamp at dusk" in document.text
    assert "checks the lens every four hours" in document.text
    assert document.title_at(document.text.index("checks the lens")) == "Keeper's manual, page 2"


def test_long_text_is_cut_into_passages_of_at_most_max_words(tmp_path: Path) -> None:
    sentences = [f"Sentence number {n} talks about tide tables." for n in range(300)]
    path = tmp_path / "tides.txt"
    path.write_text(" ".join(sentences), "utf-8")
    document = parse_file(path)
    passages = list(split_passages(document))
    assert len(passages) > 5
    assert all(len(p.text.split()) <= MAX_WORDS for p in passages)
    assert all(len(p.text.split()) >= 100 for p in passages[:-1])
    assert all(p.text.endswith(".") for p in passages)  # cut at sentence ends
    assert len({p.id for p in passages}) == len(passages)
    again = list(split_passages(parse_file(path)))
    assert [p.id for p in again] == [p.id for p in passages]  # stable ids


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("data.txt", b"\x00\x01\x02binary", "binary"),
        ("latin.md", "Caf\u00e9".encode("latin-1"), "not UTF-8"),
        ("empty.txt", b"   \n", "no text"),
        ("photo.png", b"\x89PNG", "cannot read this type"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "not a readable PDF"),
    ],
)
def test_a_bad_file_is_refused_by_name(
    tmp_path: Path, name: str, content: bytes, says: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=says) as caught:
        parse_file(path)
    assert str(caught.value).startswith(str(path))


def test_a_pdf_without_text_says_to_run_ocr(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "scan.pdf", pages=())
    with pytest.raises(ConfigError, match="no text layer") as caught:
        parse_file(path)
    assert str(path) in str(caught.value)
    assert "OCR" in str(caught.value)
