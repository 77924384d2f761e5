"""The kind of a question as the choice of how much to spend on it sees it: a calculation
against a recalled fact.

An answer's kind (a letter, a number, a short text, several parts) says how answers are read
and compared; it does not say whether working the answer out step by step pays. On small and
large models alike, reasoning first helps mainly where the question asks for a calculation, and
little or not at all where the answer is a recalled fact (Sprague et al., "To CoT or not to
CoT?", arXiv 2409.12183: on MMLU nearly all of the gain is on questions with an "=" or a
calculation in them). An atomic number and a sum are both numbers; only the sum is worked out.

So a question answered by a number or a short text is of the kind `calculation` when its text
asks for one (`asks_calculation`), and keeps its answer's kind (`number`, `text`) otherwise. A
multiple-choice question keeps the kind `letter`: its first answer's sureness is the option's
share of the options' probabilities, not comparable with a written answer's token probability,
so one threshold for both would mean two different things.
"""

from __future__ import annotations

import re
from typing import Literal

QuestionKind = Literal["letter", "number", "text", "parts", "calculation"]
"""The kinds a threshold or a choice can be set for: the answer's kinds, and `calculation` for
a number or a short text that has to be worked out."""

_EXPRESSION = re.compile(
    r"\d\s*(?:[-+*/\u00d7\u00f7^=xX]|\*\*)\s*\(?\s*-?\d"  # numbers and an operator: 12 - 3 / 3
    # an operation named in words: "the sum of", "twice as many", "calculate the total"
    r"|\b(?:plus|minus|times|divided\s+by|multiplied\s+by|squared|cubed|square\s+root|sqrt"
    r"|percent|sum\s+of|product\s+of|difference\s+between|quotient|remainder|average"
    r"|twice|half|double[sd]?|triple[sd]?|total|calculate|compute)\b",
    re.IGNORECASE,
)
_QUANTITY = re.compile(r"(?<![\w.])\$?\d[\d,]*(?:\.\d+)?%?(?![\w])")
QUANTITIES_TO_COMBINE = 2
"""A question stating at least this many quantities (numbers standing alone, not the 3 of
"cm3") asks to combine them: a word problem."""


def asks_calculation(text: str) -> bool:
    """Whether the question `text` asks for a calculation: it holds an arithmetic expression
    (two numbers joined by an operator), names an operation in words (plus, divided by, the
    sum of, twice, half, the total, calculate...), or states at least QUANTITIES_TO_COMBINE
    quantities."""
    if _EXPRESSION.search(text):
        return True
    return len(_QUANTITY.findall(text)) >= QUANTITIES_TO_COMBINE


def question_kind(answer_kind: str, calculation: bool) -> str:
    """The kind of a question whose answer is of `answer_kind` (letter, number, text, parts,
    free) and whose text asks for a calculation or not: `calculation` for a number or a short
    text worked out, else the answer's kind."""
    return "calculation" if calculation and answer_kind in ("number", "text") else answer_kind


def kinds_covering(answer_kind: str, calculation: bool) -> tuple[str, ...]:
    """The kinds whose setting applies to a question, the most specific first: for a
    calculation its own (`calculation`), then its answer's kind, which a setting made before
    the finer kind existed (or for every number) names."""
    kind = question_kind(answer_kind, calculation)
    return (kind, answer_kind) if kind != answer_kind else (kind,)
