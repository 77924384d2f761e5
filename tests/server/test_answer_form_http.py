"""The answer in the asked form over HTTP, its working beside it as `reasoning_content` (as
OpenAI-compatible reasoning servers return it), whole or streamed."""

from __future__ import annotations

import json

import httpx2

from conclave.providers.testing import FakeModel

from .conftest import ServeFactory, make_config

RAMBLE = "To determine this, recall that Canberra was built as the capital. The answer is B."
LETTER_ONLY = [
    {"role": "system", "content": "Answer with the letter only."},
    {"role": "user", "content": "Capital of Australia?\nA. Sydney\nB. Canberra\nC. Perth"},
]


def _served(serve: ServeFactory) -> str:
    fakes = {name: FakeModel(default=RAMBLE) for name in ("a", "b", "agg")}
    return serve(fakes=fakes, configs=[make_config(("a", "b"), strategy="vote")]).v1


def test_the_answer_is_the_letter_and_the_working_is_reasoning_content(
    serve: ServeFactory,
) -> None:
    v1 = _served(serve)
    answer = httpx2.post(
        v1 + "/chat/completions", json={"model": "panel", "messages": LETTER_ONLY}
    ).json()
    message = answer["choices"][0]["message"]
    assert message["content"] == "B"
    assert message["reasoning_content"] == RAMBLE


def test_a_stream_sends_the_working_as_reasoning_and_then_the_answer(serve: ServeFactory) -> None:
    v1 = _served(serve)
    body = {"model": "panel", "messages": LETTER_ONLY, "stream": True}
    with httpx2.stream("POST", v1 + "/chat/completions", json=body) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    deltas = [json.loads(line[6:])["choices"][0]["delta"] for line in lines]
    content = "".join(delta.get("content") or "" for delta in deltas)
    reasoning = "".join(delta.get("reasoning_content") or "" for delta in deltas)
    assert content == "B"
    assert reasoning == RAMBLE


def test_with_no_form_asked_the_answer_is_the_text_and_there_is_no_reasoning(
    serve: ServeFactory,
) -> None:
    v1 = _served(serve)
    messages = [{"role": "user", "content": "Why was Canberra built?"}]
    answer = httpx2.post(v1 + "/chat/completions", json={"model": "panel", "messages": messages})
    message = answer.json()["choices"][0]["message"]
    assert message["content"] == RAMBLE
    assert message["reasoning_content"] is None
