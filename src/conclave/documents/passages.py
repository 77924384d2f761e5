"""Splitting a document's text into passages of about MIN_WORDS to MAX_WORDS words.

Paragraphs (blank-line separated) are the units; a paragraph longer than MAX_WORDS is cut at
sentence ends, and a sentence longer than that at word boundaries. Units are gathered into a
passage until the next would take it past MAX_WORDS; a heading starts a new passage once the
current one holds at least MIN_WORDS_AT_HEADING words, so that a passage seldom mixes two
sections. Every passage keeps its character span in the document's text, the title of the
section it starts in, and a stable id (a hash of its file, span and text: the same file gives
the same ids every time it is indexed).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from conclave.consensus.citations import Passage
from conclave.documents.parsing import ParsedDocument

MIN_WORDS = 100
MAX_WORDS = 200
MIN_WORDS_AT_HEADING = 40

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=\S)")
_WORD = re.compile(r"\S+")


def passage_id(path: str, start: int, end: int, text: str) -> str:
    digest = hashlib.sha256(f"{path}\x1f{start}\x1f{end}\x1f{text}".encode())
    return digest.hexdigest()[:20]


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    words: int


def split_passages(document: ParsedDocument) -> Iterator[Passage]:
    """The document's passages, in order."""
    text = document.text
    path = str(document.path)
    heading_starts = {heading.start for heading in document.headings}
    current: list[_Unit] = []
    words = 0

    def emit() -> Passage:
        start, end = current[0].start, current[-1].end
        body = text[start:end]
        return Passage(
            id=passage_id(path, start, end, body),
            path=path,
            start=start,
            end=end,
            title=document.title_at(start),
            text=body,
        )

    for unit in _units(text, heading_starts):
        new_section = unit.start in heading_starts and words >= MIN_WORDS_AT_HEADING
        if current and (new_section or words + unit.words > MAX_WORDS):
            yield emit()
            current, words = [], 0
        current.append(unit)
        words += unit.words
    if current:
        yield emit()


def _units(text: str, heading_starts: set[int]) -> Iterator[_Unit]:
    """Paragraphs no longer than MAX_WORDS, as spans of `text`."""
    for start, end in _paragraphs(text, heading_starts):
        count = len(_WORD.findall(text, start, end))
        if count <= MAX_WORDS:
            yield _Unit(start, end, count)
        else:
            yield from _sentence_units(text, start, end)


def _paragraphs(text: str, heading_starts: set[int]) -> Iterator[tuple[int, int]]:
    """Spans of the text between blank lines (a heading also starts one), without the
    whitespace around them."""
    cuts = [0]
    for match in _PARAGRAPH_BREAK.finditer(text):
        cuts.append(match.end())
    cuts.extend(start for start in heading_starts if 0 < start < len(text))
    cuts = sorted(set(cuts))
    for start, end in zip(cuts, [*cuts[1:], len(text)], strict=True):
        span = _stripped(text, start, end)
        if span is not None:
            yield span


def _sentence_units(text: str, start: int, end: int) -> Iterator[_Unit]:
    """A long paragraph cut into pieces of whole sentences (a sentence longer than MAX_WORDS
    cut at words), each at most MAX_WORDS words."""
    pieces: list[tuple[int, int]] = []
    cut = start
    for match in _SENTENCE_END.finditer(text, start, end):
        pieces.append((cut, match.start()))
        cut = match.end()
    pieces.append((cut, end))
    group_start, group_end, group_words = -1, -1, 0
    for piece_start, piece_end in pieces:
        for word_start, word_end, count in _word_windows(text, piece_start, piece_end):
            if group_start >= 0 and group_words + count > MAX_WORDS:
                yield _Unit(group_start, group_end, group_words)
                group_start, group_words = -1, 0
            if group_start < 0:
                group_start = word_start
            group_end, group_words = word_end, group_words + count
    if group_start >= 0:
        yield _Unit(group_start, group_end, group_words)


def _word_windows(text: str, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """The span cut into windows of at most MAX_WORDS words."""
    words = list(_WORD.finditer(text, start, end))
    for first in range(0, len(words), MAX_WORDS):
        window = words[first : first + MAX_WORDS]
        yield window[0].start(), window[-1].end(), len(window)


def _stripped(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
