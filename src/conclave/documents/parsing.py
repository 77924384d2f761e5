"""Reading a document file into plain text with its headings.

`.txt` and `.md` are read as UTF-8 text and kept as they are (a passage's character span is
then a span of the file itself); Markdown headings come from `markdown-it-py`'s parse. `.html`
is reduced to the text of its main content by `selectolax` (the lexbor engine): scripts, styles
and navigation dropped, one block per paragraph, list item, table row or heading. `.pdf` is
read page by page with `pypdf`; each page is a heading ("page N") so that a passage names the
page it comes from. For HTML and PDF the spans are spans of that extracted text.

Every way a file can be unusable (absent, unreadable, binary, not UTF-8, a PDF that is
encrypted, damaged or has no text layer) is a ConfigError naming the file and what to do.
"""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from conclave.errors import ConfigError
from conclave.text_files import decode_user_text
from conclave.types import Frozen

if TYPE_CHECKING:
    from selectolax.lexbor import LexborNode

DocumentKind = Literal["txt", "md", "html", "pdf"]

KINDS_BY_SUFFIX: dict[str, DocumentKind] = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
"""The file types conclave indexes, by suffix (case-insensitive)."""


class Heading(Frozen):
    """A heading of a document: where its section starts in the text, and its title."""

    start: int
    title: str


class ParsedDocument(Frozen):
    """A document's text as conclave indexes it, its title and its headings in order."""

    path: Path
    kind: DocumentKind
    title: str
    text: str
    headings: tuple[Heading, ...] = ()

    def title_at(self, offset: int) -> str:
        """The title of the section holding `offset`: the nearest heading before it, else the
        document's title."""
        title = self.title
        for heading in self.headings:
            if heading.start > offset:
                break
            title = heading.title
        return title


def document_kind(path: Path) -> DocumentKind | None:
    """The kind of document a path names by its suffix, or None when conclave cannot read it."""
    return KINDS_BY_SUFFIX.get(path.suffix.lower())


def supported_suffixes() -> str:
    return ", ".join(sorted(KINDS_BY_SUFFIX))


def parse_file(path: Path, raw: bytes | None = None) -> ParsedDocument:
    """Parse one document (its bytes may be given when already read); raise ConfigError naming
    the file when it cannot be indexed."""
    kind = document_kind(path)
    if kind is None:
        raise ConfigError(
            f"{path}: conclave cannot read this type of file; it indexes {supported_suffixes()} "
            "(convert the file to one of these, or leave it out)"
        )
    if kind == "pdf":
        document = _parse_pdf(path, raw if raw is not None else read_document(path))
    else:
        text = _decode_text(path, raw if raw is not None else read_document(path))
        if kind == "md":
            document = _parse_markdown(path, text)
        elif kind == "html":
            document = _parse_html(path, text)
        else:
            document = ParsedDocument(path=path, kind="txt", title=path.stem, text=text)
    if not document.text.strip():
        raise ConfigError(f"{path}: the file holds no text to index; leave it out")
    return document


def read_document(path: Path) -> bytes:
    """A document's bytes, or ConfigError naming the file and what is wrong."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; give a file") from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot be read ({exc.strerror or exc}); check its permissions or leave it out"
        ) from None


def _decode_text(path: Path, raw: bytes) -> str:
    """The same checks as reading the file, on bytes already read."""
    return decode_user_text(path, raw, ConfigError, expected="a text document")


def _parse_markdown(path: Path, text: str) -> ParsedDocument:
    from markdown_it import MarkdownIt

    line_starts = [0]
    for match in re.finditer("\n", text):
        line_starts.append(match.end())
    headings: list[Heading] = []
    tokens = MarkdownIt("commonmark").parse(text)
    for token, inline in itertools.pairwise(tokens):
        if token.type == "heading_open" and token.map is not None and inline.type == "inline":
            title = _plain_markdown(inline.content)
            if title:
                headings.append(Heading(start=line_starts[token.map[0]], title=title))
    title = headings[0].title if headings else path.stem
    return ParsedDocument(path=path, kind="md", title=title, text=text, headings=tuple(headings))


def _plain_markdown(inline: str) -> str:
    """A heading's inline Markdown as plain words: emphasis and code marks dropped."""
    return " ".join(re.sub(r"[*_`]+", "", inline).split())


def _parse_pdf(path: Path, raw: bytes) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise ConfigError(
                f"{path}: the PDF is encrypted; save an unencrypted copy (for instance "
                "`qpdf --decrypt IN OUT`) and add that"
            )
        pages = [page.extract_text() or "" for page in reader.pages]
        metadata = reader.metadata
        meta_title = metadata.title if metadata is not None else None
    except ConfigError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        # pypdf reports a damaged file with any of these; each means the same to the user.
        raise ConfigError(
            f"{path}: not a readable PDF ({type(exc).__name__}: {exc}); check that the file "
            "is complete, or leave it out"
        ) from None
    parts: list[str] = []
    headings: list[Heading] = []
    offset = 0
    for number, page in enumerate(pages, start=1):
        page_text = page.strip()
        if not page_text:
            continue
        if parts:
            offset += 2
        headings.append(Heading(start=offset, title=f"page {number}"))
        parts.append(page_text)
        offset += len(page_text)
    text = "\n\n".join(parts)
    if not text.strip():
        raise ConfigError(
            f"{path}: the PDF has no text layer (a scanned document?); run OCR on it first "
            "(for instance `ocrmypdf IN.pdf OUT.pdf`) and add the result"
        )
    title = (meta_title or "").strip() or path.stem
    return ParsedDocument(
        path=path,
        kind="pdf",
        title=title,
        text=text,
        headings=tuple(Heading(start=h.start, title=f"{title}, {h.title}") for h in headings),
    )


_SKIPPED_TAGS = frozenset(
    {"head", "script", "style", "noscript", "template", "nav", "svg", "button", "iframe", "form"}
)
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "caption", "dd", "details", "div", "dl",
        "dt", "fieldset", "figcaption", "figure", "footer", "header", "hr", "li", "main", "ol",
        "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul", "br",
    }
)  # fmt: skip
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_CELL_TAGS = frozenset({"td", "th"})
_MAIN_SELECTORS = ("main", "[role=main]", "article", "body")


def _parse_html(path: Path, text: str) -> ParsedDocument:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(text)
    title_node = tree.css_first("title")
    page_title = " ".join(title_node.text().split()) if title_node is not None else ""
    root = next((node for s in _MAIN_SELECTORS if (node := tree.css_first(s)) is not None), None)
    writer = _BlockWriter()
    if root is not None:
        # Sphinx's "¶" permalinks after each heading are not part of its title.
        for permalink in root.css("a.headerlink"):
            permalink.decompose()
        writer.walk(root)
    headings = tuple(writer.headings)
    title = page_title or (headings[0].title if headings else path.stem)
    return ParsedDocument(
        path=path, kind="html", title=title, text=writer.text(), headings=headings
    )


class _BlockWriter:
    """HTML elements to text: one paragraph per block element, whitespace collapsed except in
    `<pre>`, table cells of a row joined by " | ", headings recorded where they start."""

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._offset = 0
        self._inline: list[str] = []
        self.headings: list[Heading] = []

    def text(self) -> str:
        self._flush()
        return "\n\n".join(self._blocks)

    def walk(self, node: LexborNode) -> None:
        for child in node.iter(include_text=True):
            tag = child.tag
            if child.is_text_node:
                self._inline.append(child.text(deep=False))
            elif tag in _SKIPPED_TAGS or not child.is_element_node:
                continue
            elif tag in _HEADING_TAGS:
                self._flush()
                title = " ".join(child.text().split())
                if title:
                    self.headings.append(Heading(start=self._next_offset(), title=title))
                    self._add_block(title)
            elif tag == "pre":
                self._flush()
                self._add_block(child.text().strip("\n"))
            elif tag in _CELL_TAGS:
                if self._inline and "".join(self._inline).strip():
                    self._inline.append(" | ")
                self.walk(child)
            elif tag in _BLOCK_TAGS:
                self._flush()
                self.walk(child)
                self._flush()
            else:
                self.walk(child)

    def _next_offset(self) -> int:
        return self._offset + (2 if self._blocks else 0)

    def _add_block(self, block: str) -> None:
        if not block.strip():
            return
        self._offset = self._next_offset() + len(block)
        self._blocks.append(block)

    def _flush(self) -> None:
        block = " ".join("".join(self._inline).split())
        self._inline = []
        self._add_block(block.strip(" |"))
