"""Scoring answers the way a person would read them: letters, numbers, names with aliases."""

from __future__ import annotations

import pytest

from conclave.errors import ConfigError
from conclave.evaluation.dataset import EvalRow
from conclave.evaluation.scoring import Scorers, score_letter, score_number, score_text

CHOICES = ("Oxygen", "Nitrogen", "Argon", "Helium")
LETTER_ROW = EvalRow(
    id="1", question="Which gas is most of the air?", choices=CHOICES, answers=("B",)
)


@pytest.mark.parametrize(
    ("answer", "right"),
    [
        ("B", True),
        ("(B)", True),
        ("B. Nitrogen", True),
        ("The answer is B.", True),
        ("I would pick option B here.", True),
        ("It is mostly nitrogen.", True),
        ("A", False),
        ("Oxygen", False),
        ("Either oxygen or nitrogen.", False),  # two options: cannot tell
        ("A lot of gases.", False),
        ("", False),
    ],
)
def test_a_letter_answer_is_right_only_when_it_picks_an_accepted_option(
    answer: str, right: bool
) -> None:
    assert score_letter(answer, LETTER_ROW) is right


@pytest.mark.parametrize(
    ("answer", "right"),
    [
        ("1250", True),
        ("That comes to $1,250.00.", True),
        ("1,250 dollars", True),
        ("1200 + 50 = 1250", True),
        ("The answer is 1250. That is 50 more than 1200.", True),
        ("#### 1250", True),
        ("1,251", False),
        ("I cannot say", False),
    ],
)
def test_a_number_answer_is_right_with_commas_units_and_words(answer: str, right: bool) -> None:
    row = EvalRow(id="n", question="How much?", answers=("1,250",))
    assert row.kind == "number"
    assert score_number(answer, row) is right


@pytest.mark.parametrize(
    ("answer", "right"),
    [
        ("aluminium", True),
        ("The element is Aluminum.", True),
        ("ALUMINIUM!", True),
        ("Silicon", False),
        ("The element is silicon, not aluminum.", False),
    ],
)
def test_a_text_answer_accepts_any_alias_in_any_case(answer: str, right: bool) -> None:
    row = EvalRow(
        id="t", question="Which element has the symbol Al?", answers=("Aluminum", "Aluminium")
    )
    assert row.kind == "text"
    assert score_text(answer, row) is right


def test_a_text_answer_ignores_accents() -> None:
    row = EvalRow(id="md", question="What is the capital of Moldova?", answers=("Chișinău",))
    assert score_text("Chisinau", row)
    assert score_text("The capital of Moldova is Chișinău.", row)


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


@pytest.mark.parametrize(
    ("answer", "right"),
    [("Port of Spain", True), ("The capital is Port of Spain.", True), ("Kingston", False)],
)
def test_an_accepted_answer_sharing_a_word_with_the_question_is_still_accepted(
    answer: str, right: bool
) -> None:
    row = EvalRow(
        id="tt", question="What is the capital of Trinidad and Tobago?", answers=("Port of Spain",)
    )
    assert score_text(answer, row) is right
