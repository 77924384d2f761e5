"""Citations in a grounded answer: reading the markers, the record of the check, and the
ALCE scores.

An answer cites the numbered passages it was given with inline markers, `[1]` or `[1, 3]` or
`[1][3]`. It is read as statements (sentences, or lines): each keeps the markers written in it
or right after its end. `GroundingReport` is what the citation check found and did, carried by
the transcript; its citation recall and precision follow ALCE (Gao et al. 2023, "Enabling Large
Language Models to Generate Text with Citations", arXiv 2305.14627):

- recall: the share of statements entailed by the passages they cite together (a statement
  that cites nothing, or cites a passage that was not given, is not);
- precision: the share of citations that are needed: a citation of a statement that is
  entailed counts unless it does not support the statement alone and the statement's other
  citations support it without it; a citation of a statement that is not entailed never counts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field

from conclave.types import Frozen

MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
"""An inline citation marker: `[2]`, `[1, 3]`."""


STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    """.split()  # noqa: SIM905  (a word list reads better as words)
)
"""Words too common to help find a passage."""

_WORD = re.compile(r"\w+", re.UNICODE)


def content_words(text: str) -> list[str]:
    """The words that carry a text's content: lower-cased, each once, in order, stop words
    left out (what a passage is searched by, and what the lexical support check compares)."""
    words = [word.lower() for word in _WORD.findall(text)]
    return [word for word in dict.fromkeys(words) if word not in STOP_WORDS]


def without_markers(text: str) -> str:
    """The text with its citation markers left out, as an answer is read ("[1]" says
    nothing of what the answer is), its spaces made single and none left before punctuation.

    Every answer is read this way several times a round, so the regular expressions run only
    where they can change something: markers only where a "[" is, and the space before
    punctuation only where one is left once the spaces are single."""
    if "[" in text:
        text = MARKER.sub(" ", text)
    text = " ".join(text.split())
    if _SPACED_PUNCTUATION.search(text) is None:
        return text
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)


_SOURCE_LIST = re.compile(
    r"\W*(?:sources?|references?|citations?|cited)(?: used)?\W*", re.IGNORECASE
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n\s*\n")

_STATEMENT_END = re.compile(
    r"[.!?]+[\"'\u201d)]*(?:[ \t]*\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\])*(?=\s|$)|\n+"
)
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?])")
_SPACED_PUNCTUATION = re.compile(r" [.,;:!?]")


class Passage(Frozen):
    """A piece of a document, as it is indexed, retrieved and cited."""

    id: str
    path: str
    """The document's absolute path."""
    start: int
    end: int
    """The passage's character span [start, end) in the document's text."""
    title: str
    text: str

    @property
    def uri(self) -> str:
        """The document as a file URI, with the span as an RFC 5147 `char=` fragment."""
        return f"{Path(self.path).as_uri()}#char={self.start},{self.end}"

    def snippet(self, words: int = 30, *, about: str = "") -> str:
        """About `words` words of the passage on one line: from the start of its sentence that
        shares the most content words with `about` (the claim it supports), else from its
        start."""
        sentences = [piece for piece in _SENTENCE.split(self.text) if piece.strip()] or [""]
        wanted = set(content_words(about))
        best = max(sentences, key=lambda sentence: len(wanted & set(content_words(sentence))))
        found = self.text[self.text.find(best) :].split() if wanted else self.text.split()
        shown = " ".join(found[:words])
        return shown + (" ..." if len(found) > words else "")


SupportMethod = Literal["judge", "lexical", "exact_terms"]
StatementStatus = Literal["supported", "recited", "unsupported", "abstention", "not_a_claim"]
"""supported: its own citations support it; recited: a passage it did not cite supports it
and is cited instead; unsupported: nothing given supports it (dropped or marked); abstention: it
says the documents do not hold the answer; not_a_claim: it states nothing (no content words)."""


class Statement(Frozen):
    """A sentence (or line) of an answer, with its span and the passage numbers it cites."""

    start: int
    end: int
    text: str
    markers: tuple[int, ...]
    """Every number it cites, in order, each once (valid or not)."""
    source_list: bool = False
    """A line that only lists sources ("Sources: [1][2]"): its markers are given to the
    statements before it that cite nothing, and it is no claim itself."""

    @property
    def claim(self) -> str:
        """The statement without its markers: what the passages must support."""
        return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", " ".join(MARKER.sub(" ", self.text).split()))


def read_statements(answer: str) -> list[Statement]:
    """The answer's statements in order (empty pieces left out). A line that only lists
    sources ("Sources: [1]", "References: [2][3]") gives its markers to the statements before
    it that cite nothing."""
    statements: list[Statement] = []
    cut = 0
    for match in _STATEMENT_END.finditer(answer):
        statements.extend(_statement(answer, cut, match.end()))
        cut = match.end()
    statements.extend(_statement(answer, cut, len(answer)))
    uncited: list[int] = []
    for index, statement in enumerate(statements):
        if statement.markers and _SOURCE_LIST.fullmatch(statement.claim):
            statements[index] = statement.model_copy(update={"source_list": True})
            for earlier in uncited:
                statements[earlier] = statements[earlier].model_copy(
                    update={"markers": statement.markers}
                )
            uncited = []
        elif not statement.markers:
            uncited.append(index)
    return statements


def _statement(answer: str, start: int, end: int) -> list[Statement]:
    while start < end and answer[start].isspace():
        start += 1
    while end > start and answer[end - 1].isspace():
        end -= 1
    if start >= end:
        return []
    text = answer[start:end]
    numbers = [int(n) for found in MARKER.findall(text) for n in re.split(r"\s*[,;]\s*", found)]
    return [Statement(start=start, end=end, text=text, markers=tuple(dict.fromkeys(numbers)))]


def cited_text(claim: str, markers: Sequence[int]) -> str:
    """A claim with its markers written before its final punctuation: "Lima is the capital
    [2]."."""
    if not markers:
        return claim
    tags = "".join(f"[{number}]" for number in markers)
    body = claim.rstrip()
    ending = ""
    while body and body[-1] in ".!?":
        ending = body[-1] + ending
        body = body[:-1]
    return f"{body.rstrip()} {tags}{ending}"


class SupportVerdict(Frozen):
    """Whether some passages support a claim, and how that was decided."""

    supported: bool
    probability: float | None = None
    """The judge's probability that the passages support the claim (from its yes/no token's
    probability), or the lexical overlap for the lexical check."""
    method: SupportMethod


class CheckedStatement(Frozen):
    """One statement of the answer as written, and what the check made of it."""

    text: str
    """As written, with its markers."""
    claim: str
    markers: tuple[int, ...]
    """The markers it was written with."""
    invalid_markers: tuple[int, ...] = ()
    """Markers naming no passage that was given: removed."""
    cited: tuple[int, ...] = ()
    """The passages it cites in the answer returned (after removal or re-citing)."""
    status: StatementStatus
    action: Literal["kept", "recited", "dropped", "marked"]
    verdict: SupportVerdict | None = None
    members: tuple[str, ...] = ()
    """Members whose own answers make this claim citing the same passage."""


class Citation(Frozen):
    """One marker of the answer returned, and the passage it names."""

    marker: int
    passage_id: str
    path: str
    title: str
    start: int
    end: int
    """The passage's character span in its document."""
    uri: str
    """The document as a file URI with the span (`file:///...#char=start,end`)."""
    snippet: str
    statement: int
    """The index of the statement (in `GroundingReport.statements`) it supports."""
    answer_start: int
    answer_end: int
    """Where the marker is in the answer returned ([answer_start, answer_end))."""


class CitationScores(Frozen):
    """ALCE's citation recall and precision over some statements (None: nothing to score)."""

    statements: int
    citations: int
    recall: float | None
    precision: float | None


class RetrievedPassage(Frozen):
    """A passage given to the members, with its number in the prompt and its retrieval score."""

    number: int
    score: float
    passage: Passage


class RetrievalReport(Frozen):
    """What the retrieval step gave the members: the passages found for the query, numbered."""

    kind: Literal["retrieval"] = "retrieval"
    collection: str
    query: str
    retrieval: str
    """bm25 or hybrid."""
    passages: tuple[RetrievedPassage, ...] = ()

    @property
    def text(self) -> str:
        """The report in a line, for people."""
        return f"{len(self.passages)} passage(s) from {self.collection!r} ({self.retrieval})"


class CitationReport(Frozen):
    """What the citation check found and did: the statements checked, the citations of the
    answer returned, the scores, whether it abstained, and which checks ran."""

    kind: Literal["citations"] = "citations"
    statements: tuple[CheckedStatement, ...] = ()
    citations: tuple[Citation, ...] = ()
    removed_markers: tuple[int, ...] = ()
    """Markers of the answer as written that named no passage given."""
    written: CitationScores | None = None
    """Citation recall and precision of the answer as the panel wrote it."""
    returned: CitationScores | None = None
    """The same for the answer returned, after the check."""
    abstained: bool = False
    general_knowledge: bool = False
    """The answer is (partly) from the models' general knowledge, marked as such."""
    checks: tuple[str, ...] = Field(default_factory=tuple)
    """The checks that ran: `markers`, `support:judge:<model>`, `support:lexical`,
    `support:exact-terms`."""

    @property
    def text(self) -> str:
        """The report in a line, for people."""
        if self.abstained:
            return "abstained: the documents do not hold the answer"
        actions = [statement.action for statement in self.statements]
        return (
            f"{len(self.citations)} citation(s) kept; {actions.count('dropped')} statement(s) "
            f"dropped, {actions.count('recited')} re-cited, {actions.count('marked')} marked, "
            f"{len(self.removed_markers)} marker(s) naming no passage removed"
        )


def alce_scores(
    entailed: Sequence[bool],
    citations: Sequence[Sequence[bool]],
) -> CitationScores:
    """ALCE's scores from each statement's joint verdict and, per statement, whether each of
    its citations is needed (see the module docstring); a statement not entailed contributes
    citations that are all not needed."""
    count = len(entailed)
    cited = sum(len(needed) for needed in citations)
    recall = sum(entailed) / count if count else None
    needed = sum(sum(flags) if ok else 0 for ok, flags in zip(entailed, citations, strict=True))
    precision = needed / cited if cited else None
    return CitationScores(statements=count, citations=cited, recall=recall, precision=precision)
