"""The answer in the form the conversation asks for: read from the instruction, written from the
text's conclusion, the working kept apart, and every part of a request of several questions."""

from __future__ import annotations

import pytest

from conclave.consensus.answers import Question, asked_form, part_answers
from conclave.consensus.forms import in_asked_form, is_in_form, shaped

MULTIPLE_CHOICE = (
    "Which gas makes up most of the air?\n\nA. Oxygen\nB. Nitrogen\nC. Argon\nD. Neon\n\n"
    "Answer with the letter only."
)
THREE_QUESTIONS = (
    "Answer each of these questions.\n\n"
    "1. Which gas makes up most of the air?\n\nA. Oxygen\nB. Nitrogen\n\n"
    "2. What is 6 x 7?\n\n"
    "3. What is the capital of Peru?\n\n"
    "Reply in the form:\n1. <letter>\n2. <number>\n3. <a few words>"
)


@pytest.mark.parametrize(
    ("instruction", "form"),
    [
        ("Answer with the letter only.", "letter"),
        ("Reply with just the letter of the correct option.", "letter"),
        ("Answer with the number only.", "number"),
        ('Work it out, then end on "Answer: <number>".', "number"),
        ("Give the final number only.", "number"),
        ("Answer in one word.", "word"),
        ("Answer in a few words only.", "words"),
        ("Return the result as JSON.", "json"),
        ("What is JSON?", None),
        ("Explain how tides work.", None),
    ],
)
def test_the_form_is_read_from_the_instruction(instruction: str, form: str | None) -> None:
    assert asked_form(instruction) == form


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("B", "B"),
        ("B. Nitrogen", "B"),
        ("To determine this, recall that air is 78% nitrogen. The answer is B.", "B"),
        ("Air is mostly nitrogen.\nAnswer: (B)", "B"),
    ],
)
def test_a_letter_question_is_answered_with_the_letter_alone(text: str, answer: str) -> None:
    result = shaped(Question.read(MULTIPLE_CHOICE), text)
    assert result.answer == answer
    assert is_in_form(Question.read(MULTIPLE_CHOICE), result.answer)


def test_the_working_is_kept_as_the_reasoning_and_a_bare_answer_has_none() -> None:
    question = Question.read("What is 17 + 25? Answer with the number only.")
    worked = "17 + 25: 7 + 5 = 12, carry 1; 1 + 2 + 1 = 4.\nAnswer: 42"
    assert shaped(question, worked).answer == "42"
    assert shaped(question, worked).reasoning == worked
    assert shaped(question, "42").reasoning == ""
    assert shaped(question, "That comes to $1,250.00.").answer == "1250"


def test_a_word_is_written_as_the_model_wrote_it() -> None:
    question = Question.read("What is the capital of Peru? Answer in one word.")
    assert shaped(question, "The capital of Peru is Lima.").answer == "Lima"
    assert is_in_form(question, "Lima")
    assert is_in_form(question, "New Delhi")  # a name
    assert not is_in_form(question, "it is Lima")


def test_the_instruction_may_be_in_the_system_message() -> None:
    question = Question.read("Which planet is largest?", instructions="Answer in one word.")
    assert question.form == "word"
    assert shaped(question, "Jupiter is the largest planet.").answer == "Jupiter"


def test_json_is_taken_out_of_the_text_around_it() -> None:
    question = Question.read("Give the city and country of the Eiffel Tower as JSON.")
    text = 'Here it is:\n```json\n{"city": "Paris", "country": "France"}\n```'
    assert shaped(question, text).answer == '{"city": "Paris", "country": "France"}'
    assert not is_in_form(question, text)


def test_a_text_with_no_readable_answer_is_left_as_it_is() -> None:
    question = Question.read(MULTIPLE_CHOICE)
    result = shaped(question, "I am not sure which one it is.")
    assert (result.answer, result.reasoning) == ("I am not sure which one it is.", "")
    assert not is_in_form(question, result.answer)


def test_no_form_asked_keeps_the_text() -> None:
    text = "Tides come from the Moon's pull. Answer: gravity."
    assert shaped(Question.read("Why are there tides?"), text).answer == text


def test_every_numbered_question_is_read_with_its_own_form() -> None:
    question = Question.read(THREE_QUESTIONS)
    assert question.kind == "parts"
    assert [(part.kind, part.form) for part in question.parts] == [
        ("letter", "letter"),
        ("number", "number"),
        ("text", "words"),
    ]
    assert question.parts[0].options == {"A": "Oxygen", "B": "Nitrogen"}


@pytest.mark.parametrize(
    "text",
    [
        "1. B\n2. 42\n3. Lima",
        "1. B. Nitrogen 2. 6 x 7 = 42 3. The capital is Lima.",
        "Let me see.\n1. Air is mostly nitrogen.\n1. B\n2. 42\n3. Lima",
        "B, 42, Lima",
    ],
)
def test_a_request_of_several_questions_gets_every_part(text: str) -> None:
    question = Question.read(THREE_QUESTIONS)
    written = shaped(question, text).answer
    assert written == "1. B\n2. 42\n3. Lima"
    assert is_in_form(question, written)
    assert question.extract(text) == "1. B; 2. 42; 3. lima"


def test_one_answer_to_several_questions_is_not_taken_for_all() -> None:
    question = Question.read(THREE_QUESTIONS)
    assert part_answers("B", 3) == (None, None, None)
    assert in_asked_form(question, "B") is None
    assert question.extract("B") is None
    assert not is_in_form(question, "B")
    assert not is_in_form(question, "1. B\n2. 42")


def test_numbered_questions_without_a_template_are_parts_and_share_an_instruction() -> None:
    question = Question.read("1. Is the sky blue?\n2. Is grass green?\nAnswer each in one word.")
    assert [part.form for part in question.parts] == ["word", "word"]
    assert shaped(question, "1. Yes, it is.\n2. Yes").answer == "1. Yes\n2. Yes"


def test_numbered_statements_inside_one_question_are_not_parts() -> None:
    text = (
        "Which is right?\n1. Cats bark.\n2. Dogs bark.\n\nA. 1 only\nB. 2 only\n\n"
        "Answer with the letter only."
    )
    assert Question.read(text).kind == "letter"
