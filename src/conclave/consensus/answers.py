"""Reading the answer out of a model's text, so that answers can be compared and counted.

Three kinds of short answer are recognised: a letter for multiple choice ("B", "(B)",
"Answer: C", or the text of one option), a number ("1,234", "= 42", "42 km", "#### 7"), and a
short string, normalised (case, punctuation, articles, aliases). A request of several numbered
questions is read part by part. Anything else is free-form text, compared by meaning elsewhere
(see agreement.py). An answer that cannot be read gives None: it supports nothing, and is
never guessed.

The question also says in which form its answer is wanted, when its instruction asks for one
("Answer with the letter only", "in one word", "as JSON", "reply in the form 1. <letter>
2. <number>"): `Question.form`, written by `conclave.consensus.forms`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

from conclave.consensus.citations import without_markers
from conclave.consensus.kinds import asks_calculation
from conclave.types import Message

AnswerKind = Literal["letter", "number", "text", "parts", "free"]
"""What a question expects: an option letter, a number, a short string, one answer for each of
several numbered questions, or free-form text."""

Form = Literal["letter", "number", "word", "words", "json"]
"""The form an instruction asks the answer in: the option letter alone, the number alone, one
word, a few words, a JSON value."""

_FORM_OF_KIND: dict[Form, AnswerKind] = {
    "letter": "letter",
    "number": "number",
    "word": "text",
    "words": "text",
    "json": "free",
}

SHORT_ANSWER_WORDS = 6
"""A text answer of at most this many words (after its lead-in is removed) is a short answer."""

_OPTION_LINE = re.compile(r"^\s*\(?([A-J])[\).:]\s+(\S.*)$", re.MULTILINE)
_LETTER_LEAD = re.compile(
    r"(?i:answer|option|choice)\s*(?i:is|:|=)?\s*(?i:option\s*)?[\*\(\[]*([A-J])\b[\*\)\]]*"
)
_LETTER_ALONE = re.compile(r"^[\s\*\(\[]*([A-J])(?:[\)\].:,\*]|\s*$|\s*\n)")
_LETTER_PARENS = re.compile(r"\(([A-J])\)")
_NUMBER = r"(?<![A-Za-z])(?:[-+]?\$?\d[\d,]*(?:\.\d+)?|[-+]?\$?\.\d+)"
"""A number standing alone: not the digits of a unit or a name ("cm3", "H2O", "mp3")."""
_NUMBER_LEAD = re.compile(rf"(?:answer\s*(?:is|:|=)|####|=)\s*[\*\$]*\s*({_NUMBER})", re.IGNORECASE)
_ANY_NUMBER = re.compile(_NUMBER)
_TEXT_LEAD = re.compile(r"(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*", re.IGNORECASE)
_PRONOUN_LEAD = re.compile(r"\s*(?:it|that|this)(?:\s+(?:is|was)|'s)\s+", re.IGNORECASE)
_ARTICLES = frozenset({"a", "an", "the"})
_CLAUSE_END = re.compile(r"[\n;,:!?()]|\.(?=\s|$)|\s[-\u2013]\s")
"""Where a short answer's first clause ends; a dot only before a space or the end, so that a
dotted name ("zipfile.BadZipFile") or a decimal stays whole."""
_FINAL_ANSWER = re.compile(
    r"(?:^|(?<=[.!?:;]\s))[\s*#>_]*(?:final\s+)?answer[\s*_]*[:\uff1a][\s*_]*([^\s*_].*?)[\s*_]*$",
    re.IGNORECASE | re.MULTILINE,
)
_ASKING = r"(?:answer|reply|respond|give|write)\s+(?:with\s+|in\s+)?(?:just\s+|only\s+)?"
_FORM_HINTS: tuple[tuple[Form, re.Pattern[str]], ...] = (
    (
        "json",
        re.compile(
            r"\b(?:in|as|with|only)\s+(?:valid\s+)?JSON\b|\bJSON\s+(?:object|only|format)\b"
        ),
    ),
    (
        "letter",
        re.compile(
            rf"(?i)<letter>|\bletter\s+only\b|\b{_ASKING}(?:the|a|one|a\s+single)\s+"
            r"(?:option\s+|correct\s+)?letter\b|\bonly\s+the\s+(?:option\s+)?letter\b"
        ),
    ),
    (
        "number",
        re.compile(
            rf"(?i)<number>|\bnumber\s+only\b|\b{_ASKING}(?:the|a|one|a\s+single)\s+(?:final\s+)?"
            r"number\b|\bas\s+a\s+(?:single\s+)?number\b|\bonly\s+the\s+(?:final\s+)?number\b"
        ),
    ),
    ("word", re.compile(r"(?i)<(?:one\s+)?word>|\b(?:one|a\s+single|single)\s+word\b")),
    (
        "words",
        re.compile(r"(?i)\b(?:a\s+few|one\s+or\s+two|two\s+or\s+three)\s+words\b"),
    ),
)
_PLACEHOLDER_FORMS: dict[str, Form] = {
    "letter": "letter",
    "number": "number",
    "word": "word",
    "one word": "word",
    "a few words": "words",
    "words": "words",
}
_TEMPLATE = re.compile(
    r"\b(?:in\s+(?:the|this)\s+form(?:at)?|formatted\s+as|as\s+follows)\b", re.IGNORECASE
)
_PLACEHOLDER = re.compile(r"(?:^|\s)(\d{1,2})[.)]\s*<([^<>\n]{1,40})>")
_ITEM = re.compile(r"(?:^|(?<=\s))(\d{1,2})[.):]\s+", re.MULTILINE)
_ITEM_LINE = re.compile(r"^[ \t]*(\d{1,2})[.)][ \t]+\S", re.MULTILINE)
_LIST_SEPARATOR = re.compile(r"\s*[,;\n]\s*")


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
    form: Form | None = None
    """The form the instruction asks the answer in; None when it asks for none."""
    parts: tuple[Question, ...] = ()
    """For a request of several numbered questions: each one, in order."""
    calculation: bool = False
    """Whether the question asks for a calculation (`conclave.consensus.kinds`)."""
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
        instructions: str = "",
    ) -> Question:
        """The kind of answer `text` asks for: several numbered questions (read one by one), or
        from its options, or an instruction such as "answer with the number only" (in `text`
        or in `instructions`, the conversation's system messages), or else from `answers`:
        numbers when most answers state one, short strings when most are short, else
        free-form."""
        answers = [without_markers(answer) for answer in answers]  # "[1]" is no number
        normalised_aliases = {
            normalise_text(alias): normalise_text(canonical)
            for alias, canonical in (aliases or {}).items()
        }
        parts = _read_parts(text, instructions, normalised_aliases)
        if parts:
            asked = frozenset(normalise_text(text).split())
            return cls("parts", {}, normalised_aliases, asked, parts=parts)
        return _read_one(cls, text, answers, normalised_aliases, asked_form(instructions))

    @classmethod
    def of(
        cls,
        conversation: Sequence[Message],
        answers: Sequence[str] = (),
        *,
        aliases: Mapping[str, str] | None = None,
    ) -> Question:
        """What a conversation asks: its latest user message, with the instructions of its
        system messages (see `read`)."""
        asked = next((m.content for m in reversed(conversation) if m.role == "user"), "")
        instructions = "\n".join(m.content for m in conversation if m.role == "system")
        return cls.read(asked, answers, aliases=aliases, instructions=instructions)

    @property
    def asks_form(self) -> bool:
        """Whether the instruction asks for the answer in a form (or one line per part)."""
        return self.form is not None or self.kind == "parts"

    def extract(self, answer: str) -> str | None:
        """The answer's comparable key ("B", "42", "canberra"; for several parts, each part's
        key after its number), or None when it cannot be read (and always None for free-form
        questions). Citation markers ("[1]") are not read."""
        answer = without_markers(answer)
        if self.kind == "letter":
            return extract_letter(answer, self.options)
        if self.kind == "number":
            return extract_number(answer)
        if self.kind == "text":
            key = " ".join(_kept_key_words(self._key_words_of, answer, self.asked_words))
            if not key:
                return None
            return self.aliases.get(key, key)
        if self.kind == "parts":
            keys = [
                None if text is None else part.extract(text)
                for part, text in zip(
                    self.parts, part_answers(answer, len(self.parts)), strict=True
                )
            ]
            if any(key is None for key in keys):
                return None
            return "; ".join(f"{number}. {key}" for number, key in enumerate(keys, start=1))
        return None

    def short_answer(self, answer: str) -> str:
        """A short text answer as written (its case kept): the words of its first clause
        after a lead-in, from the first to the last that is not the question's own ("The
        capital of Peru is Lima." -> "Lima", "It is Guinea-Bissau." -> "Guinea-Bissau")."""
        kept = _short_clause(answer, self.asked_words)
        return answer[kept[0][1] : kept[-1][2]] if kept else ""


def asked_form(text: str) -> Form | None:
    """The form an instruction in `text` asks the answer in ("Answer with the letter only":
    letter), or None."""
    for form, pattern in _FORM_HINTS:
        if pattern.search(text):
            return form
    return None


def _read_one(
    cls: type[Question],
    text: str,
    answers: Sequence[str],
    aliases: Mapping[str, str],
    instructed: Form | None,
) -> Question:
    options = {letter: option.strip() for letter, option in _OPTION_LINE.findall(text)}
    asked = frozenset(normalise_text(text).split())
    form = asked_form(text) or instructed
    calculation = asks_calculation(text)

    key_words_of: dict[str, list[str]] = {}

    def question(kind: AnswerKind) -> Question:
        read = cls(kind, options, aliases, asked, form=form, calculation=calculation)
        read._key_words_of.update(key_words_of)
        return read

    hinted = _FORM_OF_KIND[form] if form is not None else None
    if len(options) >= 2 or hinted == "letter":
        return question("letter")
    if hinted == "number":
        return question("number")
    if answers and _most(answers, lambda a: _explicit_number(a) is not None):
        return question("number")
    short = hinted == "text" or (
        answers
        and _most(
            answers, lambda a: len(_kept_key_words(key_words_of, a, asked)) <= SHORT_ANSWER_WORDS
        )
    )
    if short:
        if answers and _most(answers, lambda a: extract_number(a) is not None):
            return question("number")
        return question("text")
    return question("free")


def _read_parts(text: str, instructions: str, aliases: Mapping[str, str]) -> tuple[Question, ...]:
    """The numbered questions of a request of several (see `asked_parts`), each read alone."""
    return tuple(
        _read_one(Question, item, (), aliases, form)
        for item, form in asked_parts(text, instructions)
    )


_NAMED_PART = re.compile(r"\b(?:step|part|question)\s+(\d+)\b", re.IGNORECASE)


def named_parts(text: str) -> tuple[int, ...]:
    """The numbers of the parts (steps, questions) that `text` names, in order, each once: "add
    9 to the answer to part 1" names 1."""
    return tuple(dict.fromkeys(int(number) for number in _NAMED_PART.findall(text)))


def asked_parts(text: str, instructions: str = "") -> tuple[tuple[str, Form | None], ...]:
    """The numbered questions of a request of several, each as written (its question and
    options) with the form its answer is asked in: those a reply template numbers ("reply in
    the form 1. <letter> 2. <number>"), or at least two consecutively numbered items that each
    ask a question; none otherwise."""
    template = _TEMPLATE.search(text)
    asked = text[: _template_line_start(text, template.start())] if template else text
    placeholders: dict[int, str] = {}
    if template:
        for number, placeholder in _PLACEHOLDER.findall(text[template.end() :]):
            placeholders.setdefault(int(number), placeholder.strip().lower())
    items, tail = _numbered_items(asked)
    count = _run_length(placeholders) if len(placeholders) >= 2 else 0
    if not count:
        count = len(items) if len(items) >= 2 and all("?" in i for i in items) else 0
    if count < 2:
        return ()
    before = _ITEM.split(asked, maxsplit=1)[0]
    outside = f"{before}\n{tail}\n{text[template.start() :] if template else ''}"
    common = asked_form(_without_placeholders(outside)) or asked_form(instructions)
    parts: list[tuple[str, Form | None]] = []
    for number in range(1, count + 1):
        item = items[number - 1] if number <= len(items) else ""
        form = _PLACEHOLDER_FORMS.get(placeholders.get(number, ""))
        parts.append((item, form or asked_form(item) or common))
    return tuple(parts)


def _template_line_start(text: str, start: int) -> int:
    """Where the reply template found at `start` begins: its line's start ("Reply in the form:"
    whole), unless that line asks a question before it, which is then kept."""
    line_start = text.rfind("\n", 0, start) + 1
    return start if "?" in text[line_start:start] else line_start


def _numbered_items(text: str) -> tuple[list[str], str]:
    """The texts of the items numbered 1, 2, 3... at the start of lines, each up to the next
    item, while the numbers follow on; and what follows the last item's question and options
    (an instruction for them all, such as "Answer each in one word.")."""
    starts = [(int(m.group(1)), m.start()) for m in _ITEM_LINE.finditer(text)]
    items: list[str] = []
    for index, (number, start) in enumerate(starts):
        if number != len(items) + 1:
            break
        end = starts[index + 1][1] if index + 1 < len(starts) else len(text)
        items.append(_ITEM.sub("", text[start:end], count=1).strip())
    if not items:
        return items, ""
    lines = items[-1].splitlines()
    asks = [i for i, line in enumerate(lines) if "?" in line or _OPTION_LINE.match(line)]
    cut = asks[-1] + 1 if asks else len(lines)
    items[-1] = "\n".join(lines[:cut]).strip()
    return items, "\n".join(lines[cut:])


def _run_length(numbers: Mapping[int, object]) -> int:
    count = 0
    while count + 1 in numbers:
        count += 1
    return count


def _without_placeholders(text: str) -> str:
    return _PLACEHOLDER.sub(" ", text)


def part_answers(text: str, count: int) -> tuple[str | None, ...]:
    """The answer to each of `count` numbered questions in `text`: what follows each number
    ("1. B 2. 42", one a line or on one line; the last "2." wins, as a worked answer ends on
    its answers), else, with no number at all, `count` items separated by commas, semicolons
    or lines ("A, B, C"). A part not found is None."""
    found: dict[int, str] = {}
    matches = [m for m in _ITEM.finditer(text) if 1 <= int(m.group(1)) <= count]
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        segment = text[match.end() : end]
        answer = segment.split("\n", 1)[0].strip() or segment.strip()
        if answer:
            found[int(match.group(1))] = answer
    if not matches:
        items = [item for item in _LIST_SEPARATOR.split(final_answer(text).strip()) if item]
        if len(items) == count:
            found = dict(enumerate(items, start=1))
    return tuple(found.get(number) for number in range(1, count + 1))


def final_answer(text: str) -> str:
    """What a worked answer concludes: what follows its last "Answer:" that opens a line or a
    sentence (as a model asked to reason first writes it), else the whole text."""
    found = _FINAL_ANSWER.findall(text)
    return found[-1].strip() if found else text


def letter_shares(probabilities: Mapping[str, float] | None) -> dict[str, float]:
    """Option letters' probabilities as shares of their sum, so that they add up to 1 (empty
    when there are none or they are all zero)."""
    total = sum((probabilities or {}).values())
    if not probabilities or total <= 0:
        return {}
    return {letter: probability / total for letter, probability in probabilities.items()}


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
    """The normalised words of a short answer's first clause, without a lead-in ("The answer
    is") and without the question's own words (kept when nothing else is left)."""
    return [key for key, _, _ in _short_clause(answer, asked)]


def _short_clause(answer: str, asked: frozenset[str]) -> list[tuple[str, int, int]]:
    """The words `_key_words` keeps, each with where it is written in `answer` (start, end)."""
    lead = _TEXT_LEAD.search(answer)
    start = lead.end() if lead else 0
    pronoun = _PRONOUN_LEAD.match(answer, start)
    start = pronoun.end() if pronoun else start
    start += len(answer[start:]) - len(answer[start:].lstrip())
    clause = _CLAUSE_END.split(answer[start:], maxsplit=1)[0]
    # normalise_text's reading, word by word, keeping each word's place
    lowered = clause.lower().replace("'s ", "   ")
    words = [
        (match.group(0), start + match.start(), start + match.end())
        for match in re.finditer(r"[\w']+", lowered)
        if match.group(0) not in _ARTICLES
    ]
    return [word for word in words if word[0] not in asked] or words


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
