"""Every OpenAI chat option is honoured or refused, as the official `openai` client sees it:
sampling options reach every model call of the run (members and aggregator) over HTTP at a
scripted upstream that honours them as a real server does; bad values and types are OpenAI's
own 400s; options a consensus cannot honour are refused, never ignored; error messages speak
of the JSON the caller sent."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from provider_http import Reply, Streamed, answer_json, sse_events

from .conftest import UPSTREAM_PRESET, Served, ServeUpstream

QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Count to twelve."}]
WORDS = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve",
]  # fmt: skip


class HonouringUpstream:
    """Every model answers the twelve words, held to the call's `max_tokens` (a word is a
    token here) and cut before its first stop sequence, as a real server does; whole or
    streamed as asked. Keeps every request's JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx2.Request) -> Reply:
        body = json.loads(request.content)
        with self._lock:
            self.bodies.append(body)
        limit = body.get("max_tokens")
        words = WORDS[:limit] if limit else WORDS
        finish = "length" if len(words) < len(WORDS) else "stop"
        for stop in body.get("stop", []):
            if stop in words:
                words, finish = words[: words.index(stop)], "stop"
        text = " ".join(words)
        usage = {"prompt_tokens": 10, "completion_tokens": len(words)}
        usage["total_tokens"] = 10 + len(words)
        if not body.get("stream"):
            answer = answer_json(body["model"], text)
            answer["choices"][0]["finish_reason"] = finish  # type: ignore[index]
            return httpx2.Response(200, json={**answer, "usage": usage})
        base = {"id": "c", "object": "chat.completion.chunk", "model": body["model"]}
        pieces = [(" " if i else "") + word for i, word in enumerate(words)]
        chunks: list[dict[str, object]] = [
            {**base, "choices": [{"index": 0, "delta": {"content": piece}}]} for piece in pieces
        ]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        chunks.append({**base, "choices": [], "usage": usage})
        return Streamed(sse_events(*chunks))


@pytest.fixture
def upstream() -> HonouringUpstream:
    return HonouringUpstream()


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def transcript(url: str, transcript_id: str) -> dict[str, Any]:
    response = httpx2.get(f"{url}/v1/transcripts/{transcript_id}")
    assert response.status_code == 200
    kept: dict[str, Any] = response.json()
    return kept


def calls_of(kept: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        call
        for record in kept["rounds"]
        for call in (*record["responses"], *record["other_calls"], record["aggregate"])
        if call is not None
    ]


# --- honoured ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cap", ["max_tokens", "max_completion_tokens"])
def test_a_token_cap_holds_every_member_call_and_the_answer(
    serve_upstream: ServeUpstream, upstream: HonouringUpstream, cap: str
) -> None:
    url = serve_upstream(upstream, iterations=1)
    with client(url) as api:
        completion = api.chat.completions.create(
            model=UPSTREAM_PRESET,
            messages=QUESTION,
            extra_body={cap: 5},
        )

    answer = completion.choices[0].message.content or ""
    assert answer == "one two three four five"
    assert completion.choices[0].finish_reason == "length"
    assert len(upstream.bodies) == 8  # 3 members and the aggregator, 2 rounds
    assert all(body["max_tokens"] <= 5 for body in upstream.bodies)
    kept = transcript(url, (completion.model_extra or {})["conclave"]["transcript_id"])
    assert len(calls_of(kept)) == 8
    assert all(call["usage"]["completion_tokens"] <= 5 for call in calls_of(kept))


def test_a_token_cap_holds_a_streamed_answer(
    serve_upstream: ServeUpstream, upstream: HonouringUpstream
) -> None:
    url = serve_upstream(upstream)
    with client(url) as api:
        chunks = list(
            api.chat.completions.create(
                model=UPSTREAM_PRESET,
                messages=QUESTION,
                max_tokens=3,
                stream=True,
            )
        )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(body["max_tokens"] <= 3 for body in upstream.bodies)


def test_the_sampling_options_reach_every_call_of_the_run(
    serve_upstream: ServeUpstream, upstream: HonouringUpstream
) -> None:
    url = serve_upstream(upstream, iterations=1)
    with client(url) as api:
        completion = api.chat.completions.create(
            model=UPSTREAM_PRESET,
            messages=QUESTION,
            temperature=0.25,
            top_p=0.5,
            seed=7,
            stop=["seven", "nine"],
            presence_penalty=0.5,
            frequency_penalty=-1.5,
        )

    assert completion.choices[0].message.content == "one two three four five six"
    assert completion.choices[0].finish_reason == "stop"
    assert len(upstream.bodies) == 8
    for body in upstream.bodies:
        assert (body["temperature"], body["top_p"], body["seed"]) == (0.25, 0.5, 7)
        assert (body["presence_penalty"], body["frequency_penalty"]) == (0.5, -1.5)
        assert {"seven", "nine"} <= set(body["stop"])


def test_without_options_the_preset_samples(
    serve_upstream: ServeUpstream, upstream: HonouringUpstream
) -> None:
    url = serve_upstream(upstream)
    with client(url) as api:
        completion = api.chat.completions.create(model=UPSTREAM_PRESET, messages=QUESTION)

    assert completion.choices[0].message.content == " ".join(WORDS)
    assert {body["max_tokens"] for body in upstream.bodies} == {512}
    assert all("seed" not in body and "stop" not in body for body in upstream.bodies)


def test_store_false_keeps_the_run_out_of_the_store(served: Served) -> None:
    api = served.openai()
    kept = api.chat.completions.create(model="default", messages=QUESTION)
    unkept = api.chat.completions.create(model="default", messages=QUESTION, store=False)

    def status(completion: Any) -> int:
        run_id = completion.model_extra["conclave"]["transcript_id"]
        return httpx2.get(f"{served.v1}/transcripts/{run_id}").status_code

    assert unkept.choices[0].message.content == kept.choices[0].message.content
    assert (status(kept), status(unkept)) == (200, 404)


# --- refused ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "param", "code", "message"),
    [
        (
            {"temperature": 5},
            "temperature",
            "decimal_above_max_value",
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
            "but got 5 instead.",
        ),
        ({"temperature": -1}, "temperature", "decimal_below_min_value", None),
        (
            {"temperature": "hot"},
            "temperature",
            "invalid_type",
            "Invalid type for 'temperature': expected a number, but got a string instead.",
        ),
        ({"top_p": 2}, "top_p", "decimal_above_max_value", None),
        ({"presence_penalty": 3}, "presence_penalty", "decimal_above_max_value", None),
        (
            {"max_tokens": 1.5},
            "max_tokens",
            "invalid_type",
            "Invalid type for 'max_tokens': expected an integer, but got a decimal number instead.",
        ),
        ({"max_tokens": 0}, "max_tokens", "integer_below_min_value", None),
        ({"seed": "7"}, "seed", "invalid_type", None),
        (
            {"stream": "yes"},
            "stream",
            "invalid_type",
            "Invalid type for 'stream': expected a boolean, but got a string instead.",
        ),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length", None),
        ({"stop": 5}, "stop", "invalid_type", None),
        ({"n": 2}, "n", "unsupported_parameter", None),
        ({"logprobs": True}, "logprobs", "unsupported_parameter", None),
        ({"top_logprobs": 2}, "top_logprobs", "unsupported_parameter", None),
        ({"logit_bias": {"50256": -100}}, "logit_bias", "unsupported_parameter", None),
        ({"user": "user-1234"}, "user", "unsupported_parameter", None),
        ({"metadata": {"team": "a"}}, "metadata", "unsupported_parameter", None),
        ({"reasoning_effort": "high"}, "reasoning_effort", "unsupported_parameter", None),
        ({"modalities": ["text", "audio"]}, "modalities", "unsupported_parameter", None),
        ({"stream_options": {"include_usage": True}}, "stream_options", "invalid_value", None),
        (
            {"max_tokens": 5, "max_completion_tokens": 5},
            "max_completion_tokens",
            "invalid_value",
            None,
        ),
        (
            {"temperatur": 0.5},
            "temperatur",
            "unknown_parameter",
            "Unknown parameter: 'temperatur'.",
        ),
    ],
)
def test_a_value_that_cannot_be_honoured_is_openais_400(
    served: Served, options: dict[str, object], param: str, code: str, message: str | None
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        served.openai().chat.completions.create(
            model="default",
            messages=QUESTION,
            extra_body=options,
        )

    error = caught.value.body
    assert isinstance(error, dict)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    if message is not None:
        assert error["message"] == message
    assert param in error["message"]
    assert all(not fake.history for fake in served.fakes.values())


def test_nan_is_not_a_temperature(served: Served) -> None:
    response = httpx2.post(
        served.v1 + "/chat/completions",
        content=b'{"model": "default", "messages": [{"role": "user", "content": "Hi"}], '
        b'"temperature": NaN}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "NaN is not a JSON value" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "options",
    [{"n": 1}, {"logprobs": False}, {"tool_choice": "none"}, {"modalities": ["text"]}],
)
def test_a_no_op_value_of_an_unsupported_option_is_accepted(
    served: Served, options: dict[str, object]
) -> None:
    completion = served.openai().chat.completions.create(
        model="default",
        messages=QUESTION,
        extra_body=options,
    )
    assert completion.choices[0].message.content == "The capital of France is Paris."


# --- error messages in the caller's terms --------------------------------------------------------


def post(served: Served, body: bytes, **headers: str) -> dict[str, Any]:
    response = httpx2.post(served.v1 + "/chat/completions", content=body, headers=headers)
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_content_of_the_wrong_type_is_named_in_jsons_words(served: Served) -> None:
    body = {"model": "default", "messages": [{"role": "user", "content": 42}]}
    error = post(served, json.dumps(body).encode(), **{"content-type": "application/json"})

    assert error["message"] == (
        "Invalid type for 'messages[0].content': expected a string or an array of content "
        "parts, but got an integer instead."
    )
    assert error["param"] == "messages[0].content"


def test_an_image_part_is_refused_as_such(served: Served) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    body = {"model": "default", "messages": [{"role": "user", "content": [image]}]}
    error = post(served, json.dumps(body).encode(), **{"content-type": "application/json"})

    assert error["param"] == "messages[0].content[0]"
    assert "only text parts" in error["message"]
    assert "images" in error["message"]


def test_deeply_nested_json_is_not_called_invalid(served: Served) -> None:
    deep = b"[" * 5000 + b"]" * 5000
    body = b'{"model": "default", "messages": [{"role": "user", "content": "Hi"}], "x": %s}' % deep
    error = post(served, body, **{"content-type": "application/json"})

    assert error["code"] == "json_too_deep"
    assert "nested too deeply" in error["message"]
    assert "not valid" not in error["message"]


def test_a_body_without_a_content_type_is_told_so(served: Served) -> None:
    body = json.dumps({"model": "default", "messages": QUESTION}).encode()
    error = post(served, body)

    assert error["code"] == "invalid_content_type"
    assert "no Content-Type" in error["message"]
    assert "application/json" in error["message"]
    assert "dictionary" not in error["message"]


def test_a_body_sent_as_a_form_is_told_its_content_type(served: Served) -> None:
    body = json.dumps({"model": "default", "messages": QUESTION}).encode()
    error = post(served, body, **{"content-type": "application/x-www-form-urlencoded"})

    assert "sent as application/x-www-form-urlencoded" in error["message"]
