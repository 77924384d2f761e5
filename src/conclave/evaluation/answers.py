"""Reading the answer out of a model's words: a choice letter, a number, a normalised string.

Models rarely answer with the bare token asked for ("The answer is B.", "$1,250 in total",
"The capital of Peru is Lima."), so each reader looks for the answer the way a person would
and returns None when it cannot tell.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from fractions import Fraction

_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-\u2212])?\$?"
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<dec>\.\d+)?(?:/(?P<den>\d+))?(?!\d)"
)
_ANSWER_MARKER = re.compile(r"(?i:answer)\s*(?:is|:|=)?|####")
_STRICT_NUMBER = re.compile(r"\s*[-\u2212]?\$?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?(/\d+)?\s*%?\s*")


def parse_number(text: str, *, strict: bool = False) -> float | None:
    """The number `text` holds: "1,234", "-3.5", "$18", "3/4", "12%" (and with `strict=False`
    the first number in surrounding words, "about 12 apples"); None if there is none."""
    if strict and not _STRICT_NUMBER.fullmatch(text):
        return None
    match = _NUMBER.search(text)
    return _value(match) if match else None


def extract_number(text: str) -> float | None:
    """The answer number in a model's text: the first number after the last "answer" marker
    ("The answer is 42", "#### 42"), else the last number written (as in "17 + 25 = 42")."""
    markers = list(_ANSWER_MARKER.finditer(text))
    if markers:
        after = _NUMBER.search(text, markers[-1].end())
        if after:
            return _value(after)
    numbers = list(_NUMBER.finditer(text))
    return _value(numbers[-1]) if numbers else None


def numbers_equal(first: float, second: float) -> bool:
    """Equal up to rounding noise (relative 1e-6)."""
    return abs(first - second) <= 1e-6 * max(1.0, abs(second))


def _value(match: re.Match[str]) -> float | None:
    whole = match["int"].replace(",", "") + (match["dec"] or "")
    value = Fraction(whole)
    if match["den"]:
        denominator = int(match["den"])
        if denominator == 0:
            return None
        value /= denominator
    return float(-value if match["sign"] else value)


def extract_letter(text: str, letters: str, choices: Sequence[str] = ()) -> str | None:
    """The choice letter a model's text gives: "B", "(B)", "B. Nitrogen", "The answer is B",
    else the one choice whose text it names, else the one lone capital letter among `letters`
    in it; None when it names none or several."""
    stripped = text.strip()
    patterns = (
        r"\(?([A-Z])\)?[.:)]?",  # the whole answer is a letter
        r"\(?([A-Z])[.:)\]](?:\s|$).*",  # "B. Nitrogen", "(B) Nitrogen"
    )
    for pattern in patterns:
        match = re.fullmatch(pattern, stripped, flags=re.DOTALL)
        if match and match[1] in letters:
            return match[1]
    marked = re.search(
        r"(?i:answer|option|choice)\s*(?:is|:)?\s*(?:(?i:option|choice)\s*)?\(?([A-Za-z])\)?(?![\w'])",
        stripped,
    )
    if marked and marked[1].upper() in letters:
        return marked[1].upper()
    named = _named_choice(stripped, letters, choices)
    if named:
        return named
    lone = {
        match[1]
        for match in re.finditer(r"(?<![\w'])\(?([A-Z])\)?(?![\w'])(?P<next>\s+[a-z])?", stripped)
        if match[1] in letters and not (match[1] in "AI" and match["next"])  # "A lot", "I think"
    }
    return lone.pop() if len(lone) == 1 else None


def _named_choice(text: str, letters: str, choices: Sequence[str]) -> str | None:
    said = f" {normalise_text(text)} "
    named = [
        (letter, normalise_text(choice))
        for letter, choice in zip(letters, choices, strict=False)
        if normalise_text(choice) and f" {normalise_text(choice)} " in said
    ]
    # "Oxygen and nitrogen" also names "Oxygen": keep only the longest names.
    longest = [
        letter
        for letter, name in named
        if not any(name != other and name in other for _, other in named)
    ]
    return longest[0] if len(longest) == 1 else None


def normalise_text(text: str) -> str:
    """Lower case, accents and punctuation removed, articles dropped, spaces collapsed:
    "The  Côte-d'Ivoire." -> "cote d ivoire"."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    words = re.sub(r"[^\w]+|_", " ", plain).split()
    return " ".join(word for word in words if word not in {"a", "an", "the"})


def names_answer(text: str, accepted: Sequence[str], question: str = "") -> bool:
    """True when the text gives one of the accepted answers: it is one of them (normalised), or
    names one more often than the question itself does ("The capital of Peru is Lima" names
    Lima; "The capital of Djibouti is Tadjoura" does not name Djibouti, though it says it)."""
    said = normalise_text(text)
    asked = normalise_text(question)
    for answer in accepted:
        wanted = normalise_text(answer)
        if not wanted:
            continue
        if said == wanted or _count_phrase(said, wanted) > _count_phrase(asked, wanted):
            return True
    return False


def _count_phrase(text: str, phrase: str) -> int:
    return f" {text} ".count(f" {phrase} ")
