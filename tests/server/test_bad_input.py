"""What a hostile or careless client sends: every case gets a clear 4xx (or a correct answer),
never a 500 or a stream cut off without an error. Also OpenAI's conformity details: 400 not
422, `GET /v1/models/{id}`, `response_format`, refused tools, 405 with Allow, per-key rate limits
(CORS for the official JavaScript client is in test_security_and_limits)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx2
import openai
import pytest
from openai.types.shared_params import ResponseFormatJSONSchema

from conclave.consensus.engine import ConsensusEngine
from conclave.providers.testing import FakeModel, FunctionModel
from conclave.server import ServerSettings
from conclave.types import Message, SamplingOptions

from .conftest import Served, ServeFactory, default_fakes

KEY = "ck-test-0123456789abcdef"
SURROGATE_CHAT = b'{"model": "default", "messages": [{"role": "user", "content": "x \\ud800 y"}]}'


def settings(**values: Any) -> ServerSettings:
    return ServerSettings(_env_file=None, **values)


def chat(served: Served, body: dict[str, object], **headers: str) -> httpx2.Response:
    return httpx2.post(served.v1 + "/chat/completions", json=body, headers=headers)


def ask(content: str, **extra: object) -> dict[str, object]:
    return {"model": "default", "messages": [{"role": "user", "content": content}], **extra}


# --- text that is not text ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", SURROGATE_CHAT),
        (
            "/v1/chat/completions",
            SURROGATE_CHAT.replace(b'"default"', b'"default", "stream": true'),
        ),
        ("/v1/consensus/stream", SURROGATE_CHAT),
        ("/api/routes/chat/", b'{"user_message": "x \\udc80 y"}'),
    ],
)
def test_a_lone_surrogate_is_a_400_before_any_model_runs(
    served: Served, path: str, body: bytes
) -> None:
    response = httpx2.post(
        served.url + path, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "surrogate" in error["message"] or "unicode" in error["message"]
    assert all(not fake.history for fake in served.fakes.values())


@pytest.mark.parametrize("content", ["", "   \n\t "])
def test_a_blank_prompt_is_a_400(served: Served, content: str) -> None:
    response = chat(served, ask(content))
    assert response.status_code == 400
    assert "empty" in response.json()["error"]["message"]
    assert all(not fake.history for fake in served.fakes.values())


# --- OpenAI's conformity -----------------------------------------------------------------------


def test_models_retrieve_with_the_official_client(served: Served) -> None:
    card = served.openai().models.retrieve("panel")
    assert card.id == "panel"
    assert served.openai().models.retrieve("default").id == "default"
    with pytest.raises(openai.NotFoundError) as caught:
        served.openai().models.retrieve("no-such-preset")
    assert "panel" in caught.value.message


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"function_call": {"name": "f"}}, "function_call"),
    ],
)
def test_tool_calling_is_refused_with_a_clear_400(
    served: Served, extra: dict[str, object], param: str
) -> None:
    response = chat(served, ask("Capital of France?", **extra))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        param,
        "unsupported_parameter",
    )
    assert "tool calling is not supported" in error["message"]


def test_tool_choice_none_is_accepted(served: Served) -> None:
    assert chat(served, ask("Capital of France?", tool_choice="none")).status_code == 200


def test_a_wrong_method_is_a_405_with_allow(served: Served) -> None:
    response = httpx2.get(served.v1 + "/chat/completions")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_the_openapi_schema_documents_400_not_422(served: Served) -> None:
    schema = httpx2.get(served.url + "/openapi.json").json()
    responses = schema["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert "400" in responses
    assert "422" not in responses


# --- response_format -----------------------------------------------------------------------------


def json_when_asked_to_rewrite(text_answer: str, rewrite: str) -> FunctionModel:
    """An aggregator that answers in prose, and with `rewrite` when asked for JSON."""

    def answer(messages: Sequence[Message], options: SamplingOptions) -> str:
        return rewrite if "Reply with the JSON only" in messages[0].content else text_answer

    return FunctionModel(answer)


SCHEMA = {
    "type": "object",
    "properties": {"capital": {"type": "string"}},
    "required": ["capital"],
    "additionalProperties": False,
}
JSON_SCHEMA_FORMAT: ResponseFormatJSONSchema = {
    "type": "json_schema",
    "json_schema": {"name": "capital", "schema": SCHEMA},
}


def test_json_schema_answer_is_rewritten_to_conform(serve: ServeFactory) -> None:
    fakes = default_fakes()
    fakes["agg"] = json_when_asked_to_rewrite("Paris is the capital.", '{"capital": "Paris"}')
    served = serve(fakes=fakes)

    completion = served.openai().chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "Capital of France?"}],
        response_format=JSON_SCHEMA_FORMAT,
    )

    assert json.loads(completion.choices[0].message.content or "") == {"capital": "Paris"}
    assert completion.model_extra is not None
    transcript_id = completion.model_extra["conclave"]["transcript_id"]
    transcript = httpx2.get(f"{served.v1}/transcripts/{transcript_id}").json()
    rewrite = transcript["rounds"][-1]
    assert rewrite["responses"] == []
    assert rewrite["aggregate"]["text"] == '{"capital": "Paris"}'


def test_a_fenced_json_answer_is_unwrapped_without_another_call(serve: ServeFactory) -> None:
    fakes = default_fakes()
    fakes["agg"] = FakeModel(default='```json\n{"capital": "Paris"}\n```')
    served = serve(fakes=fakes)
    response = chat(served, ask("Capital of France?", response_format={"type": "json_object"}))
    assert response.status_code == 200
    content = response.json()["choices"][0]["message"]["content"]
    assert json.loads(content) == {"capital": "Paris"}
    assert len(fakes["agg"].history) == 2  # two rounds, no rewrite


def test_an_answer_that_cannot_be_made_to_conform_is_a_clear_502(serve: ServeFactory) -> None:
    fakes = default_fakes()
    fakes["agg"] = json_when_asked_to_rewrite("Paris.", '{"city": "Paris"}')
    served = serve(fakes=fakes)
    response = chat(served, ask("Capital of France?", response_format=JSON_SCHEMA_FORMAT))
    assert response.status_code == 502
    assert "response_format" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("response_format", "stream", "param"),
    [
        (
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "bogus"}}},
            False,
            "response_format.json_schema.schema",
        ),
        ({"type": "json_object"}, True, "response_format"),
        ({"type": "xml"}, False, "response_format"),
    ],
)
def test_a_response_format_that_cannot_be_given_is_a_400(
    served: Served, response_format: dict[str, object], stream: bool, param: str
) -> None:
    response = chat(served, ask("Capital?", response_format=response_format, stream=stream))
    assert response.status_code == 400
    assert response.json()["error"]["param"].startswith(param)


# --- keys, CORS, rate limits, redaction ---------------------------------------------------------


def test_the_401_message_keeps_its_placeholder(serve: ServeFactory) -> None:
    served = serve(settings=settings(api_keys=KEY))
    response = chat(served, ask("Capital of France?"))
    assert response.status_code == 401
    assert "Authorization: Bearer <key>" in response.json()["error"]["message"]


def test_a_key_over_its_rate_gets_429_with_retry_after(serve: ServeFactory) -> None:
    other = "ck-other-fedcba9876543210"
    served = serve(settings=settings(api_keys=f"{KEY},{other}", rate_limit_per_minute=2))
    statuses = [
        chat(served, ask("Capital?"), Authorization=f"Bearer {KEY}").status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    limited = chat(served, ask("Capital?"), Authorization=f"Bearer {KEY}")
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limit_error"
    # Another key has its own budget; /health is never limited.
    assert chat(served, ask("Capital?"), Authorization=f"Bearer {other}").status_code == 200
    assert httpx2.get(served.url + "/health").status_code == 200


def test_a_key_in_a_providers_answer_is_redacted_everywhere(serve: ServeFactory) -> None:
    leaky = f"The key is {KEY}, enjoy."
    fakes = default_fakes()
    fakes["a"] = FakeModel(default=leaky)
    fakes["agg"] = FakeModel(default=leaky)
    served = serve(fakes=fakes, settings=settings(api_keys=KEY))
    auth = {"Authorization": f"Bearer {KEY}"}

    answer = chat(served, ask("Key?"), **auth)
    transcript_id = answer.json()["conclave"]["transcript_id"]
    transcript = httpx2.get(f"{served.v1}/transcripts/{transcript_id}", headers=auth)
    streamed = httpx2.post(served.v1 + "/consensus/stream", json=ask("Key?"), headers=auth)
    chunks = chat(served, ask("Key?", stream=True), **auth)

    for response in (answer, transcript, streamed, chunks):
        assert response.status_code == 200
        assert KEY not in response.text
        assert "[redacted]" in response.text
    assert answer.json()["choices"][0]["message"]["content"] == "The key is [redacted], enjoy."


# --- a bug below the service ---------------------------------------------------------------------


def test_a_bug_mid_run_ends_each_stream_with_an_error_not_a_cut(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: ConsensusEngine, run: object) -> None:
        raise RuntimeError(f"a bug, with {KEY} in its message")

    monkeypatch.setattr(ConsensusEngine, "_stop_reason", broken)

    events = httpx2.post(served.v1 + "/consensus/stream", json=ask("Capital?"))
    chunks = chat(served, ask("Capital?", stream=True))
    whole = chat(served, ask("Capital?"))

    assert events.status_code == 200
    assert events.text.rstrip().split("\n\n")[-1].startswith("event: error")
    last_chunk = chunks.text.rstrip().split("\n\n")[-1]
    assert json.loads(last_chunk.removeprefix("data: "))["error"]["code"] == "internal_error"
    assert whole.status_code == 500
    assert whole.json()["error"]["code"] == "internal_error"
    for response in (events, chunks, whole):
        assert "RuntimeError" not in response.text
