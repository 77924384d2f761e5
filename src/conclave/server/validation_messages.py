"""Validation errors in the caller's terms, worded as OpenAI's API words them.

pydantic describes a bad field in its own vocabulary (`Input should be a valid string`,
`content.list[TextPart]`, `Extra inputs are not permitted`). The caller wrote JSON, so each
problem is said here in JSON's words, naming the parameter as the caller wrote it
(`messages[0].content`) and with OpenAI's `code`:

    Invalid type for 'temperature': expected a number, but got a string instead.
    Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 5 instead.
    Missing required parameter: 'messages'.
    Unknown parameter: 'foo'.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic_core import ErrorDetails

UNION_TAG_MARK = "<"
"""Request schemas name the members of their unions `<...>` (see `schemas.py`); such a name in
an error's location is pydantic's, not a field of the caller's, and is left out of `param`."""

_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "string_type": "a string",
    "list_type": "an array",
    "tuple_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "dataclass_type": "an object",
}

_BOUNDS = {
    "greater_than_equal": ("ge", "below minimum", ">="),
    "greater_than": ("gt", "below minimum", ">"),
    "less_than_equal": ("le", "above maximum", "<="),
    "less_than": ("lt", "above maximum", "<"),
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: the sentence for the caller, the parameter, the code."""

    message: str
    param: str
    code: str


def describe_problems(errors: Sequence[ErrorDetails]) -> list[Problem]:
    """Every error, in the caller's words, in pydantic's order."""
    return [describe(error) for error in errors]


def describe(error: ErrorDetails) -> Problem:
    """One pydantic error as OpenAI would say it."""
    param = parameter(error["loc"])
    kind = error["type"]
    value = error.get("input")
    context = error.get("ctx") or {}
    if kind == "missing":
        return Problem(
            f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
        )
    if kind == "extra_forbidden":
        return Problem(f"Unknown parameter: '{param}'.", param, "unknown_parameter")
    if kind in _EXPECTED:
        return _wrong_type(param, _EXPECTED[kind], value)
    if kind == "invalid_type":  # the request schemas' own, for a value of no accepted type
        return _wrong_type(param, error["msg"], value)
    if kind in _BOUNDS:
        key, side, sign = _BOUNDS[kind]
        bound = context.get(key)
        number = "decimal" if isinstance(bound, float) else "integer"  # the field's kind
        code = f"{number}_{'below_min' if side == 'below minimum' else 'above_max'}_value"
        return Problem(
            f"Invalid '{param}': {number} {side} value. Expected a value {sign} "
            f"{_number(bound)}, but got {_number(value)} instead.",
            param,
            code,
        )
    if kind == "finite_number":
        return Problem(
            f"Invalid '{param}': expected a finite number, but got {_number(value)} instead.",
            param,
            "invalid_value",
        )
    if kind in ("literal_error", "enum"):
        return Problem(
            f"Invalid value for '{param}': {_shown(value)}. Supported values are: "
            f"{context.get('expected', '')}.",
            param,
            "invalid_value",
        )
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        return _wrong_length(param, kind, value, context)
    return Problem(f"Invalid '{param}': {error['msg']}.", param, kind)


def parameter(location: Sequence[int | str]) -> str:
    """`messages[0].content` for pydantic's `('messages', 0, 'content')`; union member names
    are left out. An empty location is the body itself."""
    path = ""
    for part in location:
        if part in _SOURCES and not path:
            continue  # FastAPI's name for where the value came from
        if isinstance(part, int):
            path += f"[{part}]"
        elif not part.startswith(UNION_TAG_MARK):
            path += f".{part}" if path else part
    return path or "body"


def _wrong_type(param: str, expected: str, value: object) -> Problem:
    return Problem(
        f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
        param,
        "invalid_type",
    )


def _wrong_length(param: str, kind: str, value: object, context: dict[str, object]) -> Problem:
    what = "string" if kind.startswith("string") else "array"
    length = len(value) if isinstance(value, str | list | tuple | dict) else None
    if kind.endswith("too_short"):
        minimum = context.get("min_length", 1)
        if not length:
            return Problem(
                f"Invalid '{param}': empty {what}. Expected {_an(what)} with minimum length "
                f"{minimum}, but got an empty {what} instead.",
                param,
                f"empty_{what}",
            )
        return Problem(
            f"Invalid '{param}': {what} too short. Expected {_an(what)} with minimum length "
            f"{minimum}, but got {_an(what)} with length {length} instead.",
            param,
            f"{what}_below_min_length",
        )
    return Problem(
        f"Invalid '{param}': {what} too long. Expected {_an(what)} with maximum length "
        f"{context.get('max_length')}, but got {_an(what)} with length {length} instead.",
        param,
        f"{what}_above_max_length",
    )


def _an(what: str) -> str:
    return f"an {what}" if what[0] in "aeiou" else f"a {what}"


def json_type(value: object) -> str:
    """What a parsed JSON value is, in JSON's words: `a string`, `an integer`, `null`..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number" if math.isfinite(value) else _number(value)
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _number(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return f"{value:g}"
    return str(value)


def _shown(value: object, limit: int = 60) -> str:
    shown = json.dumps(value, ensure_ascii=False, default=str).replace('"', "'")
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
