"""Properties checked on generated input (Hypothesis): the config loader never fails with
anything but a ConfigError, the receipts' canonical JSON is stable and exact, the OpenAI
request models either accept a body or refuse it with a field-naming 400, never a crash, and
a key split across streamed pieces is redacted as in one piece."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conclave.attestation.canonical import JsonValue, canonical_json, canonical_sha256
from conclave.config import load_config, parse_config
from conclave.errors import ConfigError
from conclave.server.api_errors import ApiError
from conclave.server.json_body import validate
from conclave.server.schemas import ChatCompletionRequest, ConsensusStreamRequest
from conclave.server.security import Redactor

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

# Bodies near the real shape, so that generation reaches deep fields, not only the top level.
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "developer", ""])},
    optional={"content": json_values | st.text()},
)
chat_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": json_values | st.text(),
        "messages": st.lists(message, max_size=3) | json_values,
        "stream": json_values,
        "n": json_values,
        "response_format": json_values
        | st.fixed_dictionaries({"type": st.sampled_from(["text", "json_object", "json_schema"])}),
        "tools": json_values,
        "tool_choice": json_values,
    },
)


def config_error(load: Callable[[], object]) -> str | None:
    """The ConfigError's message, or None when loading worked (any other error escapes)."""
    try:
        load()
    except ConfigError as exc:
        return str(exc)
    return None


@FAST
@given(raw=st.binary(max_size=300))
def test_any_bytes_as_a_config_file_load_or_fail_with_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, raw: bytes
) -> None:
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_bytes(raw)
    problem = config_error(lambda: load_config(path))
    assert problem is None or problem.startswith(str(path))


@FAST
@given(data=json_values)
def test_any_json_as_a_config_parses_or_fails_with_a_config_error(data: JsonValue) -> None:
    problem = config_error(lambda: parse_config(data))
    assert problem is None or problem.startswith("config:")


@FAST
@given(value=json_values)
def test_canonical_json_reads_back_to_the_same_value_and_hash(value: JsonValue) -> None:
    try:
        encoded = canonical_json(value)
    except ValueError:
        return  # a lone surrogate: refused, as documented
    again = json.loads(encoded)
    assert canonical_json(again) == encoded
    assert canonical_sha256(json.loads(json.dumps(value))) == canonical_sha256(value)


@FAST
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_canonical_numbers_read_back_to_the_same_double(value: float) -> None:
    written = canonical_json(value).decode()
    assert float(written) == value or (value == 0 and float(written) == 0)
    assert math.copysign(1, float(written)) == 1 or value < 0


@FAST
@given(body=chat_bodies)
def test_any_chat_body_is_accepted_or_a_400_naming_a_field(body: dict[str, object]) -> None:
    for model in (ChatCompletionRequest, ConsensusStreamRequest):
        refused: ApiError | None = None
        try:
            validate(model, body)
        except ApiError as exc:
            refused = exc
        if refused is not None:
            assert refused.status == 400
            assert refused.type == "invalid_request_error"
            assert refused.param
            assert refused.message


@FAST
@given(text=st.text())
def test_a_message_text_is_accepted_as_given(text: str) -> None:
    body = {"model": "default", "messages": [{"role": "user", "content": text}]}
    request = ChatCompletionRequest.model_validate(body)
    assert cast(str, request.messages[0].content) == text


SECRET = "ck-secret-0123456789"


@FAST
@given(
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=6),
)
def test_a_key_split_across_streamed_pieces_never_leaves_in_any_piece(
    before: str, after: str, cuts: list[int]
) -> None:
    redact = Redactor([SECRET])
    text = before + SECRET + after
    bounds = sorted({0, len(text), *(cut for cut in cuts if cut < len(text))})
    pieces = [text[start:end] for start, end in itertools.pairwise(bounds)]
    stream = redact.pieces()
    sent = [stream.feed(piece) for piece in pieces] + [stream.flush()]
    assert "".join(sent) == redact(text)
    assert all(SECRET[: len(SECRET) // 2] not in piece for piece in sent)
