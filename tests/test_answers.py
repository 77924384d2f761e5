"""Reading answers out of model text: letters, numbers, short strings."""

from __future__ import annotations

import pytest

from conclave.consensus.answers import (
    Question,
    canonical_number,
    extract_letter,
    extract_number,
    final_answer,
    normalise_text,
    same_text_answer,
)

MULTIPLE_CHOICE = (
    "Which city is the capital of France?\nA. Lyon\nB. Paris\nC. Marseille\nD. Nice\nAnswer:"
)
OPTIONS = {"A": "Lyon", "B": "Paris", "C": "Marseille", "D": "Nice"}


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("B", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("Answer: C", "C"),
        ("The correct answer is **D**.", "D"),
        ("B. Paris is the capital of France.", "B"),
        ("I think it is (B) because Paris is the capital.", "B"),
        ("The capital is Paris.", "B"),
        ("The answer is a city in the north.", None),
        ("A city in the north, Lyon.", "A"),
        ("A big city by the sea.", None),
        ("I do not know.", None),
        ("Either Lyon or Nice.", None),
    ],
)
def test_letters_are_read_from_every_usual_form(answer: str, letter: str | None) -> None:
    assert extract_letter(answer, OPTIONS) == letter


@pytest.mark.parametrize(
    ("answer", "number"),
    [
        ("42", "42"),
        ("17 + 25 = 42", "42"),
        ("The answer is 1,234.", "1234"),
        ("It costs $3.50 in total.", "3.5"),
        ("She walks 12 km.", "12"),
        ("3 apples and 4 pears make 7 fruits.\n#### 7", "7"),
        ("42.0", "42"),
        ("-5", "-5"),
        ("no idea", None),
    ],
)
def test_numbers_are_read_and_spelled_one_way(answer: str, number: str | None) -> None:
    assert extract_number(answer) == number


def test_a_number_that_is_not_one_is_refused() -> None:
    assert canonical_number("1.2.3") is None


def test_text_is_normalised_for_case_punctuation_and_articles() -> None:
    assert normalise_text("The  Eiffel Tower!") == "eiffel tower"
    assert same_text_answer("canberra", "capital of australia is canberra")
    assert not same_text_answer("canberra", "sydney")


def test_the_kind_of_question_is_read_from_its_options_or_its_answers() -> None:
    assert Question.read(MULTIPLE_CHOICE).kind == "letter"
    assert Question.read("What is 6 x 7?", ["42", "6 x 7 = 42", "forty"]).kind == "number"
    assert Question.read("Capital of Peru?", ["Lima", "It is Lima.", "Cusco"]).kind == "text"
    long_answers = ["word " * 40, "other " * 40]
    assert Question.read("Explain tides.", long_answers).kind == "free"


def test_short_answers_use_aliases_and_drop_lead_ins() -> None:
    question = Question.read(
        "Which country has Washington as its capital?",
        ["USA", "The answer is the United States."],
        aliases={"USA": "United States"},
    )
    assert question.kind == "text"
    assert question.extract("USA") == question.extract("The answer is the United States.")
    assert question.extract("") is None


def test_short_answers_are_compared_without_the_questions_own_words() -> None:
    question = Question.read("What is the capital of Cuba?", ["Havana", "The capital is Havana."])
    assert question.kind == "text"
    spelled = [
        "Havana",
        "The capital of Cuba is Havana.",
        "Havana, which is also its largest city.",
    ]
    keys = {question.extract(answer) for answer in spelled}
    assert keys == {"havana"}
    assert question.extract("The capital of Cuba is Santiago.") == "santiago"


def test_an_instruction_in_the_question_names_the_kind() -> None:
    assert Question.read("How many legs has a spider? Answer with the number only.").kind == (
        "number"
    )
    assert Question.read("Pick one. Answer with the letter only.").kind == "letter"
    assert Question.read("Who wrote Hamlet? Answer in a few words only.").kind == "text"


def test_a_number_longer_than_28_digits_is_read_not_an_error() -> None:
    long_number = "1" * 40
    assert canonical_number(long_number) == long_number
    assert extract_number(f"The answer is {long_number}.") == long_number
    assert canonical_number("1E+3") == "1000"


@pytest.mark.parametrize(
    ("text", "concluded"),
    [
        ("10 - 2 = 8\n8 + 5 = 13\nAnswer: 13", "13"),
        ("It was chosen as a compromise.\n**Answer:** Canberra", "Canberra"),
        ("Thinking it over.\nFinal answer: B) Paris", "B) Paris"),
        ("Ge is the element with the symbol Ge. Answer: Germanium", "Germanium"),
        ("The answer: 7, on second thought\nAnswer: 9", "9"),
        ("B", "B"),
        ("The correct answer: none of these", "The correct answer: none of these"),
    ],
)
def test_a_worked_answer_concludes_with_its_last_answer_line(text: str, concluded: str) -> None:
    assert final_answer(text) == concluded
