"""The canonical JSON form that receipts hash: one byte string for one JSON value.

`conclave-jcs/1` follows RFC 8785 (the JSON Canonicalization Scheme):

- objects have their members sorted by key, compared as UTF-16 code units; keys must be strings;
- no whitespace between tokens;
- strings are written as UTF-8, escaping only `"`, `\\` and the control characters below U+0020
  (as `\\b \\t \\n \\f \\r` or `\\u00xx` in lower-case hex); lone surrogates are refused;
- floats are written as ECMAScript writes a Number: the shortest digits that read back to the
  same double, `1.0` as `1`, exponent form only below 1e-6 or from 1e21 on (`1e-7`, `1e+21`);
  NaN and the infinities are refused;
- `true`, `false` and `null` as themselves; tuples are arrays.

One deliberate difference: Python integers are written exactly in decimal, also beyond 2**53
where RFC 8785 (which reads every number as a double) would round them. Within +-2**53 the two
agree byte for byte.

A value dumped with `json.dumps` and read back with `json.loads` has the same canonical form as
the original, so a receipt file can be re-hashed from the JSON it holds.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final, TypeAlias

CANONICAL_FORM: Final = "conclave-jcs"
"""The name of the canonical form that `canonical_json` writes."""

CANONICAL_VERSION: Final = 1
"""The version of the canonical form; it changes whenever a byte of its output would."""

JsonValue: TypeAlias = (
    "bool | int | float | str | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)
"""Any value that has a JSON form."""


def canonical_json(value: JsonValue) -> bytes:
    """The canonical UTF-8 bytes of `value` (see the module docstring); ValueError if none."""
    parts: list[str] = []
    _write(value, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("a string holds a lone surrogate, which has no UTF-8 form") from exc


def canonical_sha256(value: JsonValue) -> str:
    """The lower-case hex sha256 of `canonical_json(value)`."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _write(value: JsonValue, parts: list[str]) -> None:
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        parts.append(str(value))
    elif isinstance(value, float):
        parts.append(format_number(value))
    elif isinstance(value, str):
        parts.append(_string(value))
    elif isinstance(value, Mapping):
        _write_object(value, parts)
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _write(item, parts)
        parts.append("]")
    else:
        raise ValueError(f"{type(value).__name__} has no JSON form")


def _write_object(value: Mapping[str, JsonValue], parts: list[str]) -> None:
    for key in value:
        if not isinstance(key, str):
            raise ValueError(f"object keys must be strings, not {type(key).__name__}")
    parts.append("{")
    for index, key in enumerate(sorted(value, key=_utf16_order)):
        if index:
            parts.append(",")
        parts.append(_string(key))
        parts.append(":")
        _write(value[key], parts)
    parts.append("}")


def _utf16_order(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly as RFC 8785's UTF-16 code units do.
    return key.encode("utf-16-be", errors="surrogatepass")


def _string(value: str) -> str:
    # json.dumps with ensure_ascii=False escapes exactly the characters RFC 8785 escapes.
    return json.dumps(value, ensure_ascii=False)


def format_number(value: float) -> str:
    """A float written as ECMAScript's Number.prototype.toString writes it (RFC 8785 3.2.2.3)."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError("NaN and Infinity have no JSON form")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that round-trip, as ECMAScript requires.
    digits_tuple, exponent = _digits(abs(value))
    digits = "".join(map(str, digits_tuple))
    k = len(digits)
    n = exponent + k  # value = 0.digits * 10**n
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        body = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body


def _digits(value: float) -> tuple[tuple[int, ...], int]:
    decimal_tuple = Decimal(repr(value)).as_tuple()
    digits = list(decimal_tuple.digits)
    exponent = decimal_tuple.exponent
    assert isinstance(exponent, int)  # finite by the check above
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exponent += 1
    while len(digits) > 1 and digits[0] == 0:
        digits.pop(0)
    return tuple(digits), exponent
