"""The kind of a question a threshold is chosen for: a calculation against a recalled fact."""

from __future__ import annotations

import pytest

from conclave.consensus.answers import Question
from conclave.consensus.kinds import asks_calculation, kinds_covering, question_kind
from conclave.evaluation.dataset import EvalRow


@pytest.mark.parametrize(
    "text",
    [
        "What is 12 - 3 / 3?",
        "Calculate 503 + 97.",
        "What is 6 x 7?",
        "What is 2**10?",
        "What is the square root of 81?",
        "A shop sells 3 pens for $4. How much do 12 pens cost?",
        "Tom has twice as many apples as Ann. Ann has seven. How many has Tom?",
    ],
)
def test_an_expression_an_operation_in_words_or_several_quantities_ask_for_a_calculation(
    text: str,
) -> None:
    assert asks_calculation(text)


@pytest.mark.parametrize(
    "text",
    [
        "What is the atomic number of iron?",
        "Which chemical element has atomic number 26?",
        "What is the capital of Peru?",
        "Which chemical element has the symbol Al?",
        "How many protons does a cm3 of water hold?",
    ],
)
def test_a_recalled_fact_asks_for_no_calculation(text: str) -> None:
    assert not asks_calculation(text)


def test_only_a_number_or_a_text_is_of_the_kind_calculation() -> None:
    assert question_kind("number", True) == "calculation"
    assert question_kind("text", True) == "calculation"
    assert question_kind("number", False) == "number"
    assert question_kind("letter", True) == "letter"  # its sureness is an option's share
    assert kinds_covering("number", True) == ("calculation", "number")
    assert kinds_covering("letter", True) == ("letter",)


def test_a_question_and_a_row_read_the_kind_by_the_same_rule() -> None:
    question = Question.read("What is 17 + 25?\n\nAnswer with the number only.")
    assert question.kind == "number"
    assert question.calculation
    recalled = Question.read("What is the atomic number of iron? Answer with the number only.")
    assert not recalled.calculation
    row = EvalRow(id="1", question="What is 17 + 25?", answers=("42",))
    assert row.question_kind == "calculation"
    fact = EvalRow(id="2", question="What is the atomic number of iron?", answers=("26",))
    assert fact.question_kind == "number"
