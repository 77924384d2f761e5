"""Scoring answers the way a person would read them: letters, numbers, names with aliases."""

from __future__ import annotations

import pytest

from conclave.errors import ConfigError
from conclave.evaluation.answers import extract_letter, extract_number, normalise_text
from conclave.evaluation.dataset import EvalRow
from conclave.evaluation.scoring import Scorers, score_letter, score_number, score_text

CHOICES = ("Oxygen", "Nitrogen", "Oxygen and nitrogen", "Argon")
LETTER_ROW = EvalRow(
    id="1", question="Which gas is most of the air?", choices=CHOICES, answers=("B",)
)


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("B. Nitrogen", "B"),
        ("B) Nitrogen is the main gas", "B"),
        ("The answer is B.", "B"),
        ("Answer: (b)", "B"),
        ("I would pick option B here.", "B"),
        ("Nitrogen", "B"),
        ("It is mostly nitrogen.", "B"),
        ("oxygen and nitrogen", "C"),  # names C, which contains A's text: C wins
        ("Most of it is B, then A.", None),  # two letters: cannot tell
        ("A lot of gases.", None),
        ("Helium", None),
        ("E", None),  # not a choice
    ],
)
def test_letters_are_read_as_a_person_would(text: str, letter: str | None) -> None:
    assert extract_letter(text, "ABCD", CHOICES) == letter


def test_a_letter_answer_is_right_only_for_an_accepted_letter() -> None:
    assert score_letter("The answer is B", LETTER_ROW)
    assert not score_letter("The answer is A", LETTER_ROW)
    assert not score_letter("", LETTER_ROW)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("42", 42.0),
        ("17 + 25 = 42", 42.0),
        ("The answer is 1,234 apples.", 1234.0),
        ("She pays $18.50 in total", 18.5),
        ("-7", -7.0),
        ("It is 3/4 of the cake", 0.75),
        ("The answer is 12. That is 2 more than 10.", 12.0),
        ("#### 300", 300.0),
        ("12%", 12.0),
        ("no idea", None),
    ],
)
def test_numbers_are_read_with_commas_units_and_words(text: str, number: float | None) -> None:
    assert extract_number(text) == number


def test_a_number_answer_matches_within_rounding() -> None:
    row = EvalRow(id="n", question="How much?", answers=("1,250",))
    assert row.kind == "number"
    assert score_number("That comes to $1250.00.", row)
    assert score_number("1,250 dollars", row)
    assert not score_number("1,251", row)
    assert not score_number("I cannot say", row)


def test_text_answers_accept_aliases_and_ignore_case_accents_and_articles() -> None:
    row = EvalRow(
        id="t", question="Which element has the symbol Al?", answers=("Aluminum", "Aluminium")
    )
    assert row.kind == "text"
    assert score_text("aluminium", row)
    assert score_text("The element is Aluminum.", row)
    assert not score_text("Silicon", row)
    assert normalise_text("The  Côte-d'Ivoire.") == "cote d ivoire"


def test_repeating_the_question_does_not_count_as_the_answer() -> None:
    row = EvalRow(id="d", question="What is the capital of Djibouti?", answers=("Djibouti",))
    assert score_text("Djibouti", row)
    assert score_text("The capital of Djibouti is Djibouti.", row)
    assert not score_text("The capital of Djibouti is Tadjoura.", row)


def exact_match(answer: str, row: EvalRow) -> bool:
    """A custom scorer for the tests below: the answer exactly as written."""
    return answer in row.answers


def test_a_custom_scorer_replaces_every_kind_or_one() -> None:
    everywhere = Scorers.from_specs([f"{__name__}:exact_match"])
    assert not everywhere.score("The answer is B", LETTER_ROW)
    assert everywhere.score("B", LETTER_ROW)
    text_only = Scorers.from_specs([f"text={__name__}:exact_match"])
    assert text_only.score("The answer is B", LETTER_ROW)  # letters still use the default


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "expected module:function"),
        ("no_such_module_xyz:f", "cannot import no_such_module_xyz"),
        (f"{__name__}:missing", "has no function missing"),
        (f"colour={__name__}:exact_match", "'colour' is not an answer kind"),
    ],
)
def test_a_bad_scorer_is_a_clear_error(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Scorers.from_specs([spec])
