"""Panel labels: members named apart, and extra draws traced back to their member."""

from __future__ import annotations

import pytest

from conclave.config import ModelSpec
from conclave.consensus.panel import panel_member_of, unique_labels


def test_the_same_model_twice_is_numbered() -> None:
    specs = [ModelSpec(id="a/m"), ModelSpec(id="b/n"), ModelSpec(id="a/m")]
    assert unique_labels(specs) == ("a/m #1", "b/n", "a/m #2")


@pytest.mark.parametrize(
    ("call", "member"),
    [
        ("a/m", "a/m"),  # the member itself
        ("a/m #3", "a/m"),  # one of its draws
        ("b/n #1", "b/n #1"),  # a member numbered because it sits twice in the panel
        ("b/n #1 #2", "b/n #1"),  # a draw of that member
        ("c/o #2", None),  # no such member
        ("a/m #x", None),
        ("a/m (aggregator)", None),
    ],
)
def test_a_call_is_traced_to_the_member_it_came_from(call: str, member: str | None) -> None:
    assert panel_member_of(call, {"a/m", "b/n #1", "b/n #2"}) == member
