"""Reading the answer out of a model's text, so that answers can be compared and counted.

Three kinds of short answer are recognised: a letter for multiple choice ("B", "(B)",
"Answer: C", or the text of one option), a number ("1,234", "= 42", "42 km", "#### 7"), and a
short string, normalised (case, punctuation, articles, aliases). Anything else is free-form
text, compared by meaning elsewhere (see agreement.py). An answer that cannot be read gives
None: it supports nothing, and is never guessed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

AnswerKind = Literal["letter", "number", "text", "free"]
"""What a question expects: an option letter, a number, a short string, or free-form text."""

SHORT_ANSWER_WORDS = 6
"""A text answer of at most this many words (after its lead-in is removed) is a short answer."""

_OPTION_LINE = re.compile(r"^\s*\(?([A-J])[\).:]\s+(\S.*)$", re.MULTILINE)
_LETTER_LEAD = re.compile(
    r"(?i:answer|option|choice)\s*(?i:is|:|=)?\s*(?i:option\s*)?[\*\(\[]*([A-J])\b[\*\)\]]*"
)
_LETTER_ALONE = re.compile(r"^[\s\*\(\[]*([A-J])(?:[\)\].:,\*]|\s*$|\s*\n)")
_LETTER_PARENS = re.compile(r"\(([A-J])\)")
_NUMBER = r"[-+]?\$?\d[\d,]*(?:\.\d+)?|[-+]?\$?\.\d+"
_NUMBER_LEAD = re.compile(rf"(?:answer\s*(?:is|:|=)|####|=)\s*[\*\$]*\s*({_NUMBER})", re.IGNORECASE)
_ANY_NUMBER = re.compile(_NUMBER)
_TEXT_LEAD = re.compile(r"(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*", re.IGNORECASE)
_ARTICLES = frozenset({"a", "an", "the"})
_CLAUSE_END = re.compile(r"[\n.;,:!?()]|\s[-\u2013]\s")
_FINAL_ANSWER = re.compile(
    r"(?:^|(?<=[.!?:;]\s))[\s*#>_]*(?:final\s+)?answer[\s*_]*[:\uff1a][\s*_]*([^\s*_].*?)[\s*_]*$",
    re.IGNORECASE | re.MULTILINE,
)
_KIND_HINT = re.compile(r"(?i:answer with (?:the|a|one) )(letter|number)|(?i:in a few words)")


@dataclass(frozen=True)
class Question:
    """What the answers are compared against: the question's kind, its options by letter, and
    aliases (a normalised spelling mapped to the canonical one, e.g. "usa" -> "united states")."""

    kind: AnswerKind
    options: Mapping[str, str]
    aliases: Mapping[str, str]
    asked_words: frozenset[str] = frozenset()
    """The question's own words, left out of short text answers ("The capital of Cuba is
    Havana" to "havana" for "What is the capital of Cuba?")."""
    _key_words_of: dict[str, list[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Each answer's key words once read: a round reads every answer to choose the kind, then
    again to group the answers."""

    @classmethod
    def read(
        cls,
        text: str,
        answers: Sequence[str] = (),
        *,
        aliases: Mapping[str, str] | None = None,
    ) -> Question:
        """The kind of answer `text` asks for: from its options, or an instruction such as
        "answer with the number only", or else from `answers`: numbers when most answers state
        one, short strings when most are short, else free-form."""
        options = {letter: option.strip() for letter, option in _OPTION_LINE.findall(text)}
        asked = frozenset(normalise_text(text).split())
        normalised_aliases = {
            normalise_text(alias): normalise_text(canonical)
            for alias, canonical in (aliases or {}).items()
        }

        key_words_of: dict[str, list[str]] = {}

        def question(kind: AnswerKind) -> Question:
            read = cls(kind, options, normalised_aliases, asked)
            read._key_words_of.update(key_words_of)
            return read

        found = _KIND_HINT.search(text)
        hint = (found.group(1) or "words").lower() if found else None
        if len(options) >= 2 or hint == "letter":
            return question("letter")
        if hint == "number":
            return question("number")
        if answers and _most(answers, lambda a: _explicit_number(a) is not None):
            return question("number")
        short = hint is not None or (
            answers
            and _most(
                answers,
                lambda a: len(_kept_key_words(key_words_of, a, asked)) <= SHORT_ANSWER_WORDS,
            )
        )
        if short:
            if answers and _most(answers, lambda a: extract_number(a) is not None):
                return question("number")
            return question("text")
        return question("free")

    def extract(self, answer: str) -> str | None:
        """The answer's comparable key ("B", "42", "canberra"), or None when it cannot be read
        (and always None for free-form questions)."""
        if self.kind == "letter":
            return extract_letter(answer, self.options)
        if self.kind == "number":
            return extract_number(answer)
        if self.kind == "text":
            key = " ".join(_kept_key_words(self._key_words_of, answer, self.asked_words))
            if not key:
                return None
            return self.aliases.get(key, key)
        return None


def final_answer(text: str) -> str:
    """What a worked answer concludes: what follows its last "Answer:" that opens a line or a
    sentence (as a model asked to reason first writes it), else the whole text."""
    found = _FINAL_ANSWER.findall(text)
    return found[-1].strip() if found else text


def extract_letter(answer: str, options: Mapping[str, str]) -> str | None:
    """The option letter an answer picks: stated ("Answer: C", "(B)", "B. Paris") or, failing
    that, the one option whose text the answer contains."""
    allowed = set(options) or set("ABCDE")
    for pattern in (_LETTER_LEAD, _LETTER_ALONE):
        match = pattern.search(answer)
        if match and match.group(1) in allowed:
            return match.group(1)
    named = {str(letter) for letter in _LETTER_PARENS.findall(answer) if letter in allowed}
    if len(named) == 1:
        return named.pop()
    written = normalise_text(answer)
    mentioned = [
        letter
        for letter, option in options.items()
        if normalise_text(option) and _contains_words(written, normalise_text(option))
    ]
    return mentioned[0] if len(mentioned) == 1 else None


def extract_number(answer: str) -> str | None:
    """The number an answer gives, in one canonical spelling ("1,234.50" -> "1234.5"): the one
    after "answer is", "####" or the last "=", else the last number in the text."""
    found = _explicit_number(answer) or _last_number(answer)
    return None if found is None else canonical_number(found)


def canonical_number(text: str) -> str | None:
    """One spelling per value: no commas, currency sign or trailing zeros; None if not a number."""
    cleaned = text.replace(",", "").replace("$", "").strip().rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if value == value.to_integral_value():
        # format, not quantize: quantize fails past 28 digits (a model's long digit run)
        return format(value.to_integral_value(), "f")
    return format(value.normalize(), "f")


def normalise_text(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces."""
    words = re.findall(r"[\w']+", text.lower().replace("'s ", " "))
    return " ".join(word for word in words if word not in _ARTICLES)


def same_text_answer(first: str, second: str) -> bool:
    """Two normalised short answers say the same thing: equal, one is the other with more
    words around it ("canberra" and "canberra australia"), or they open with the same two
    words."""
    if first == second:
        return True
    shorter, longer = sorted((first, second), key=len)
    if shorter and _contains_words(longer, shorter):
        return True
    opening = shorter.split()[:2]
    return len(opening) == 2 and longer.split()[:2] == opening


def _contains_words(text: str, phrase: str) -> bool:
    return f" {phrase} " in f" {text} "


def _explicit_number(answer: str) -> str | None:
    matches = _NUMBER_LEAD.findall(answer)
    return matches[-1] if matches else None


def _last_number(answer: str) -> str | None:
    matches = _ANY_NUMBER.findall(answer)
    return matches[-1] if matches else None


def _key_words(answer: str, asked: frozenset[str]) -> list[str]:
    """The words of a short answer's first clause, without a lead-in ("The answer is") and
    without the question's own words (kept when nothing else is left)."""
    lead = _TEXT_LEAD.search(answer)
    text = answer[lead.end() :] if lead else answer
    clause = _CLAUSE_END.split(text.strip(), maxsplit=1)[0]
    words = normalise_text(clause).split()
    new = [word for word in words if word not in asked]
    return new or words


def _kept_key_words(kept: dict[str, list[str]], answer: str, asked: frozenset[str]) -> list[str]:
    """`_key_words` of `answer`, read once and kept in `kept`."""
    words = kept.get(answer)
    if words is None:
        words = kept[answer] = _key_words(answer, asked)
    return words


def _most(answers: Sequence[str], test: Callable[[str], bool]) -> bool:
    """Whether more than half of `answers` pass `test`; stops reading once that is decided."""
    needed = len(answers) // 2 + 1
    allowed_failures = len(answers) - needed
    passed = failed = 0
    for answer in answers:
        if test(answer):
            passed += 1
            if passed >= needed:
                return True
        else:
            failed += 1
            if failed > allowed_failures:
                return False
    return False


def text_similarity(first: str, second: str) -> float:
    """How alike two answers read, from 0 to 1, ignoring case, punctuation and spacing."""
    return difflib.SequenceMatcher(None, _words(first), _words(second), autojunk=False).ratio()


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())
