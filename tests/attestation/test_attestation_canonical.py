"""The canonical JSON form receipts hash (RFC 8785-like)."""

from __future__ import annotations

import hashlib
import json
import math
import struct
from datetime import UTC, datetime

import pytest

from conclave.attestation import canonical_json, canonical_sha256
from conclave.attestation.canonical import JsonValue, format_number
from conclave.consensus.transcript import CallRecord, RoundRecord, Transcript
from conclave.types import Message, Usage


def test_the_rfc_8785_example_is_reproduced() -> None:
    # RFC 8785, section 3.2.2 (input) and 3.2.4 (expected output).
    value = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )

    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(value) == expected.encode("utf-8")


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # RFC 8785, section 3.2.3: the emoji (a surrogate pair) sorts before U+FB33.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }

    order = list(json.loads(canonical_json(value)))

    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


@pytest.mark.parametrize(
    ("bits", "expected"),
    [
        # RFC 8785 Appendix B: IEEE 754 bit patterns and their ECMAScript form.
        ("0000000000000000", "0"),
        ("8000000000000000", "0"),
        ("0000000000000001", "5e-324"),
        ("8000000000000001", "-5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("ffefffffffffffff", "-1.7976931348623157e+308"),
        ("4340000000000000", "9007199254740992"),
        ("c340000000000000", "-9007199254740992"),
        ("4430000000000000", "295147905179352830000"),
        ("44b52d02c7e14af5", "9.999999999999997e+22"),
        ("44b52d02c7e14af6", "1e+23"),
        ("44b52d02c7e14af7", "1.0000000000000001e+23"),
        ("444b1ae4d6e2ef4e", "999999999999999700000"),
        ("444b1ae4d6e2ef4f", "999999999999999900000"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("41b3de4355555553", "333333333.3333332"),
        ("41b3de4355555554", "333333333.33333325"),
        ("41b3de4355555555", "333333333.3333333"),
        ("41b3de4355555556", "333333333.3333334"),
        ("41b3de4355555557", "333333333.33333343"),
        ("becbf647612f3696", "-0.0000033333333333333333"),
        ("43143ff3c1cb0959", "1424953923781206.2"),
    ],
)
def test_numbers_are_written_as_ecmascript_writes_them(bits: str, expected: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))

    assert format_number(value) == expected


def test_floats_that_are_whole_are_written_as_integers() -> None:
    assert canonical_json({"a": 1.0, "b": 1, "c": -0.0, "d": 1e-7, "e": 1e21}) == (
        b'{"a":1,"b":1,"c":0,"d":1e-7,"e":1e+21}'
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="NaN"):
        canonical_json([bad])


def test_non_string_keys_and_lone_surrogates_are_refused() -> None:
    with pytest.raises(ValueError, match="keys must be strings"):
        canonical_json({1: "x"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="surrogate"):
        canonical_json("\ud800")
    with pytest.raises(ValueError, match="no JSON form"):
        canonical_json({"when": datetime.now(UTC)})  # type: ignore[dict-item]


def test_large_integers_are_written_exactly() -> None:
    assert canonical_json([2**64, -(2**70)]) == b"[18446744073709551616,-1180591620717411303424]"


def test_the_hash_is_the_sha256_of_the_canonical_bytes() -> None:
    value: JsonValue = {"b": [1, 2.5, "x"], "a": None}

    assert canonical_json(value) == b'{"a":null,"b":[1,2.5,"x"]}'
    assert canonical_sha256(value) == hashlib.sha256(b'{"a":null,"b":[1,2.5,"x"]}').hexdigest()


def test_a_transcript_hashes_the_same_after_a_trip_through_a_json_file() -> None:
    record = CallRecord(
        model="m",
        text="naïve ☃ \u2028 \x00",
        usage=Usage(prompt_tokens=3, completion_tokens=4, cost_usd=0.1 + 0.2),
        latency_s=1 / 3,
    )
    transcript = Transcript(
        id="t",
        created_at=datetime(2025, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        config={"nested": {"z": 1, "a": [1e-9, 12345678.9]}},
        conversation=(Message(role="user", content="q"),),
        rounds=(RoundRecord(index=0, responses=(record,)),),
        duration_s=2.0,
    )
    dumped = transcript.model_dump(mode="json")

    through_a_file = json.loads(transcript.to_json())

    assert canonical_json(through_a_file) == canonical_json(dumped)
    assert b" " not in canonical_json({"a": [1, 2]})


def test_any_change_to_the_value_changes_the_hash() -> None:
    base: dict[str, JsonValue] = {"answer": "Paris.", "usage": {"cost_usd": 1.5e-7}}

    assert canonical_sha256(base) != canonical_sha256({**base, "answer": "Paris"})
    assert canonical_sha256(base) != canonical_sha256({**base, "usage": {"cost_usd": 1.6e-7}})
    assert canonical_sha256(base) == canonical_sha256(dict(reversed(list(base.items()))))
