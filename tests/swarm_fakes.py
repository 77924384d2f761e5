"""A swarm scripted with the shipped fakes, for the tests of the interfaces (CLI, HTTP, page):
three steps, the second failing, the third using the first."""

from __future__ import annotations

import json
from collections.abc import Sequence

from conclave.errors import ProviderHTTPError
from conclave.providers.testing import FakeModel, FunctionModel
from conclave.types import Message, SamplingOptions

FINAL = "Part 1: 42\nPart 2: not answered\nPart 3: 43"

PLAN = {
    "steps": [
        {"id": 1, "agent": "math", "instruction": "Answer part 1.", "depends_on": []},
        {"id": 2, "agent": "facts", "instruction": "Answer part 2.", "depends_on": []},
        {"id": 3, "agent": "math", "instruction": "Add 1 to step 1.", "depends_on": [1]},
    ]
}

AGENTS = [
    {"name": "math", "description": "numbers", "role": "You do maths.", "models": ["a"]},
    {"name": "facts", "description": "facts", "role": "You know facts.", "models": ["b"]},
]
"""Agents for a panel of members `a` (answers) and `b` (always fails)."""


def orchestrator(latency_s: float = 0.0) -> FunctionModel:
    """Plans (when asked under the plan's schema), else writes FINAL."""

    def respond(messages: Sequence[Message], options: SamplingOptions) -> str:
        return json.dumps(PLAN) if options.json_schema is not None else FINAL

    return FunctionModel(respond, latency_s=latency_s)


def swarm_fakes(latency_s: float = 0.0) -> dict[str, FakeModel | FunctionModel]:
    """`a` answers every step it is given, `b` fails, `agg` orchestrates."""
    return {
        "a": FakeModel(default="Answer: 42", latency_s=latency_s),
        "b": FakeModel(default=ProviderHTTPError("b: HTTP 503 upstream down", status_code=503)),
        "agg": orchestrator(latency_s),
    }
