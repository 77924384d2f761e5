"""Multiple choice read from the options' probabilities, and the options reordered.

Asked a multiple-choice question for the letter only, a small model's answer is its first token,
and llama.cpp has the probability of every option letter there: one call scores all the options
(`first_token_choices`), the letter is the likeliest, and its share of the letters' mass says how
sure the model is. Small models also favour a position ("A" most of the time for the 0.5B and
SmolLM2), so a draw may show the options in another order (rotated by `shift`): its
probabilities are mapped back to the options as first written, and the votes of the draws add
them up, which averages the position bias away.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from conclave.consensus.answers import Question, extract_letter
from conclave.consensus.panel import Member
from conclave.types import Completion, Message, StreamItem, TextDelta

LETTER_TOKENS = 1
"""How many tokens a multiple-choice answer read from the probabilities may write: its letter."""


def letter_question(messages: Sequence[Message]) -> Question | None:
    """The multiple-choice question of the conversation's latest user message when it asks for
    the letter only (the options' probabilities then are the answer); else None."""
    question = Question.of(messages)
    if question.kind != "letter" or question.form != "letter" or len(question.options) < 2:
        return None
    return question


def rotation(letters: Sequence[str], shift: int) -> tuple[str, ...]:
    """Which option each position shows once the options are rotated by `shift`: position i
    shows the option first written at position i + shift."""
    count = len(letters)
    return tuple(letters[(index + shift) % count] for index in range(count))


def reordered(messages: Sequence[Message], question: Question, shift: int) -> tuple[Message, ...]:
    """The conversation with the latest user message's options rotated by `shift` (the letters
    stay in place; the texts move)."""
    letters = sorted(question.options)
    shown = rotation(letters, shift)
    index = max(i for i, message in enumerate(messages) if message.role == "user")
    text = messages[index].content
    for letter, original in zip(letters, shown, strict=True):
        text = _replace_option(text, letter, question.options[original])
    rewritten = Message(role="user", content=text)
    return (*messages[:index], rewritten, *messages[index + 1 :])


def _replace_option(text: str, letter: str, option: str) -> str:
    """`text` with the option line of `letter` ("B. ...") saying `option`; the lines are
    rewritten one at a time, each found by its letter from the start of a line."""
    lines = text.split("\n")
    for number, line in enumerate(lines):
        stripped = line.lstrip()
        for opening in (f"{letter}. ", f"{letter}) ", f"({letter}) ", f"{letter}: "):
            if stripped.startswith(opening):
                indent = line[: len(line) - len(stripped)]
                lines[number] = f"{indent}{opening}{option}"
                return "\n".join(lines)
    return text


@dataclass(frozen=True)
class ChoiceScorer(Member):
    """A member that answers a multiple-choice question asked for the letter only by its
    options' probabilities, in one call that writes at most LETTER_TOKENS (other questions go
    to it unchanged); with a `shift`, it is shown the options rotated, and its letter and
    probabilities are mapped back to the options as first written. For members whose backend
    reports the probabilities (the embedded models); a backend that does not leaves the letter
    it wrote."""

    shift: int = 0

    async def complete(self, messages: Sequence[Message]) -> Completion:
        question = letter_question(messages)
        if question is None:
            return await Member.complete(self, messages)
        letters = sorted(question.options)
        shown = rotation(letters, self.shift)
        sent = reordered(messages, question, self.shift) if self.shift else tuple(messages)
        options = self.spec.sampling.model_copy(
            update={"max_tokens": LETTER_TOKENS, "first_token_choices": tuple(letters)}
        )
        started = time.perf_counter()
        completion = await self.provider.complete(self.spec.model_name, sent, options)
        back = dict(zip(letters, shown, strict=True))  # shown letter -> option first written
        probabilities = completion.choice_probabilities
        mapped = {back[k]: v for k, v in probabilities.items()} if probabilities else None
        letter = extract_letter(completion.text, dict.fromkeys(letters, ""))
        text = back[letter] if letter is not None else completion.text
        return completion.model_copy(
            update={
                "text": text,
                "choice_probabilities": mapped,
                "latency_s": time.perf_counter() - started,
            }
        )

    async def stream(self, messages: Sequence[Message]) -> AsyncIterator[StreamItem]:
        completion = await self.complete(messages)
        yield TextDelta(text=completion.text)
        yield completion

    def variant(self, label: str, **spec_changes: object) -> ChoiceScorer:
        """The same scorer, under `label`, with some settings changed."""
        return replace(self, spec=self.spec.model_copy(update=spec_changes), label=label)


def choice_scorer(member: Member, *, shift: int = 0, label: str | None = None) -> ChoiceScorer:
    """`member` answering multiple choice by its options' probabilities (see ChoiceScorer)."""
    return ChoiceScorer(
        member.spec, member.provider, label or member.label, member.json_schema, shift=shift
    )
