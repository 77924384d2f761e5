"""The answer in the form the conversation asks for, and the working kept apart from it.

An instruction such as "Answer with the letter only", "in one word", "as JSON" or "reply in the
form 1. <letter> 2. <number>" asks for the final answer alone. A model often writes its working
anyway (small models most of all), and a reasoning step is asked to; so the consensus answer is
written in the asked form from what the consensus text concludes, and the text itself is kept
as the reasoning (`Transcript.reasoning`, `reasoning_content` over HTTP). With no form asked,
the text is the answer as it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from conclave.consensus.agreement import AgreementMeter
from conclave.consensus.answers import (
    SHORT_ANSWER_WORDS,
    Form,
    Question,
    asked_parts,
    canonical_number,
    final_answer,
    part_answers,
)
from conclave.consensus.events import AnswerChecked
from conclave.consensus.steps import CheckEvent
from conclave.consensus.transcript import AnswerFormReport, RoundRecord, StepRecord
from conclave.types import Message

_LETTER_ONLY = re.compile(r"\(?([A-Z])\)?\.?")
_NUMBER_ONLY = re.compile(r"[-+]?\$?(?:\d[\d,]*(?:\.\d+)?|\.\d+)%?")
_WORD = re.compile(r"[\w'][\w'-]*")
_NAME_WORDS = 3
"""A one-word answer may be a name of up to this many capitalised words ("New Delhi")."""
_JSON_START = re.compile(r"[\[{]")

FORM_INSTRUCTIONS: dict[Form, str] = {
    "letter": "Answer with the letter only.",
    "number": "Answer with the number only.",
    "word": "Answer in one word.",
    "words": "Answer in a few words only.",
    "json": "Answer in JSON only.",
}
"""The plain instruction asking for each form (read back as that form by `asked_form`)."""


@dataclass(frozen=True)
class ShapedAnswer:
    """The answer in the asked form, and the working it came from ("" when the text was the
    answer already)."""

    answer: str
    reasoning: str = ""


def shaped(question: Question, text: str) -> ShapedAnswer:
    """`text` as the answer to `question`: in the asked form with the text as its reasoning,
    or the text itself when no form is asked or none can be read from it."""
    written = in_asked_form(question, text)
    if written is None or written == text.strip():
        return ShapedAnswer(text)
    return ShapedAnswer(written, text)


def in_asked_form(question: Question, text: str) -> str | None:
    """The answer `text` gives, written in the form `question` asks (the letter, the number,
    the word or words, the JSON value, one numbered line per part); None when no form is asked
    or the text does not give the answer in a readable way."""
    if question.kind == "parts":
        given = part_answers(text, len(question.parts))
        lines = []
        for number, (part, part_text) in enumerate(zip(question.parts, given, strict=True), 1):
            written = in_asked_form(part, part_text) if part_text is not None else None
            if written is None and part_text is not None and part.form is None:
                written = part_text
            if written is None:
                return None
            lines.append(f"{number}. {written}")
        return "\n".join(lines)
    concluded = final_answer(text)
    if question.form == "letter":
        return question.extract(concluded) if question.kind == "letter" else None
    if question.form == "number":
        value = question.extract(concluded) if question.kind == "number" else None
        return canonical_number(value) if value is not None else None
    if question.form in ("word", "words"):
        written = question.short_answer(concluded)
        return written or None
    if question.form == "json":
        return first_json(text)
    return None


def asks_for_a_form(conversation: Sequence[Message]) -> bool:
    """Whether the conversation asks for its answer in a form (see `Question.asks_form`)."""
    return Question.of(conversation).asks_form


@dataclass(frozen=True)
class AskedPart:
    """One question of a request of several: as written (`question`), and as a conversation
    of its own (`conversation`): the system messages, then the question with the plain
    instruction of the form its part is asked in (FORM_INSTRUCTIONS)."""

    question: str
    conversation: tuple[Message, ...]


def part_conversations(conversation: Sequence[Message]) -> tuple[AskedPart, ...]:
    """For a request of several numbered questions, each question as a conversation of its
    own; none for any other request."""
    asked = next((m.content for m in reversed(conversation) if m.role == "user"), "")
    system = tuple(m for m in conversation if m.role == "system")
    instructions = "\n".join(m.content for m in system)
    return tuple(
        AskedPart(
            question=item,
            conversation=(
                *system,
                Message(
                    role="user",
                    content=f"{item}\n\n{FORM_INSTRUCTIONS[form]}" if form is not None else item,
                ),
            ),
        )
        for item, form in asked_parts(asked, instructions)
    )


def first_json(text: str) -> str | None:
    """The first JSON object or array written in `text` (inside a code fence or not), as
    written."""
    decoder = json.JSONDecoder()
    for start in _JSON_START.finditer(text):
        try:
            _, end = decoder.raw_decode(text, start.start())
        except json.JSONDecodeError:
            continue
        return text[start.start() : end]
    return None


def is_in_form(question: Question, answer: str) -> bool:
    """Whether `answer` is in the form `question` asks and nothing more: the letter alone, the
    number alone, one word (or a name of a few capitalised words), a few words on one line, a
    JSON value, or one numbered line per part. True when no form is asked."""
    if question.kind == "parts":
        lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
        if len(lines) != len(question.parts):
            return False
        for number, (part, line) in enumerate(zip(question.parts, lines, strict=True), 1):
            head, dot, rest = line.partition(".")
            if head != str(number) or not dot or not is_in_form(part, rest.strip()):
                return False
        return True
    shown = answer.strip()
    if question.form == "letter":
        return _LETTER_ONLY.fullmatch(shown) is not None
    if question.form == "number":
        return _NUMBER_ONLY.fullmatch(shown) is not None
    if question.form == "word":
        words = _WORD.findall(shown)
        one_name = len(words) <= _NAME_WORDS and all(w[0].isupper() for w in words)
        return " ".join(words) == shown.rstrip(".") and (len(words) == 1 or one_name)
    if question.form == "words":
        return "\n" not in shown and len(_WORD.findall(shown)) <= SHORT_ANSWER_WORDS
    if question.form == "json":
        try:
            json.loads(shown)
        except json.JSONDecodeError:
            return False
        return True
    return True


FORM_STEP = "form"


class AnswerInForm:
    """The last check of every run: the final consensus written in the form the conversation
    asks for, the text it was read from kept in the round's steps as the reasoning (see
    `shaped`). When the conversation asks for no form there is nothing to check, and the step
    says nothing (no event: the run's events stay as they were); when it asks for one but none
    can be read, the consensus stays as it is."""

    name = FORM_STEP

    def __init__(self, meter: AgreementMeter) -> None:
        self._meter = meter

    async def check(
        self, round: RoundRecord, conversation: Sequence[Message], answer: str
    ) -> AsyncGenerator[CheckEvent, None]:
        question = self._meter.question(conversation)
        if not question.asks_form:
            return
        result = shaped(question, answer)
        revised = result.answer != answer
        form = "parts" if question.kind == "parts" else question.form
        report = (
            AnswerFormReport(form=form or "", reasoning=result.reasoning)
            if revised and result.reasoning
            else None
        )
        yield AnswerChecked(
            round=round.index,
            step=FORM_STEP,
            answer=result.answer,
            revised=revised,
            record=StepRecord(step=FORM_STEP, report=report),
        )
