"""The OpenAI-compatible API, through the official `openai` client (sync and async) against a
real uvicorn, with fake members behind the consensus."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from conclave.errors import ProviderHTTPError, ProviderTimeoutError
from conclave.providers.testing import FakeModel, FunctionModel
from conclave.types import Message, SamplingOptions

from .conftest import Fakes, Served, ServeFactory, default_fakes, make_config

QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the capital of France?"}
]


def async_client(served: Served) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=served.v1, api_key="unused", max_retries=0)


def round_by_round_aggregator() -> FunctionModel:
    """An aggregator whose answer says which of its calls it is: draft 1, draft 2, ..."""
    calls: list[int] = []

    def answer(messages: Sequence[Message], options: SamplingOptions) -> str:
        calls.append(1)
        return f"draft {len(calls)} says Paris"

    return FunctionModel(answer)


def test_sync_client_gets_the_final_consensus(served: Served) -> None:
    completion = served.openai().chat.completions.create(model="default", messages=QUESTION)

    assert completion.choices[0].message.content == "The capital of France is Paris."
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "panel"
    assert completion.object == "chat.completion"
    # usage counts every call of the run: 3 members and the aggregator, in 2 rounds
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 8
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    summary = (completion.model_extra or {})["conclave"]
    assert summary["rounds"] == 2
    assert [m["model"] for m in summary["members"]] == ["a", "b", "c"]
    assert all(m["answered"] == 2 and m["failed"] == 0 for m in summary["members"])
    assert completion.id == f"chatcmpl-{summary['transcript_id']}"


async def test_async_client_and_a_preset_named_by_its_config(serve: ServeFactory) -> None:
    fakes = default_fakes()
    fakes["solo"] = FakeModel(default="Solo says Paris.")
    served = serve(
        fakes=fakes,
        configs=[make_config(), make_config(["solo"], "solo", name="solo-panel", iterations=0)],
    )
    async with async_client(served) as api:
        completion = await api.chat.completions.create(model="solo-panel", messages=QUESTION)
    assert completion.choices[0].message.content == "Solo says Paris."
    assert completion.model == "solo-panel"
    assert len(fakes["solo"].history) == 2  # once as member, once as aggregator
    assert fakes["a"].history == []


def test_a_multi_turn_conversation_reaches_every_member_in_order(served: Served) -> None:
    conversation: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of Italy?"},
        {"role": "assistant", "content": "Rome."},
        {"role": "developer", "content": "Stay brief."},
        {"role": "user", "content": [{"type": "text", "text": "And of France?"}]},
    ]
    served.openai().chat.completions.create(model="default", messages=conversation)

    for name in ("a", "b", "c"):
        first_round = served.fakes[name].history[0]
        assert [(m.role, m.content) for m in first_round.messages] == [
            ("system", "Answer in one word."),
            ("user", "Capital of Italy?"),
            ("assistant", "Rome."),
            ("system", "Stay brief."),
            ("user", "And of France?"),
        ]


def test_sync_stream_sends_only_the_final_rounds_aggregate(serve: ServeFactory) -> None:
    fakes = default_fakes()
    fakes["agg"] = round_by_round_aggregator()
    served = serve(fakes=fakes, configs=[make_config(iterations=2)])

    chunks = list(
        served.openai().chat.completions.create(
            model="default",
            messages=QUESTION,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "draft 3 says Paris"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert all(reason is None for reason in finishes[:-1])
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.total_tokens > 0
    assert len({c.id for c in chunks}) == 1


async def test_async_stream_without_usage(serve: ServeFactory) -> None:
    fakes = default_fakes()
    fakes["agg"] = round_by_round_aggregator()
    served = serve(fakes=fakes)
    async with async_client(served) as api:
        stream = await api.chat.completions.create(model="default", messages=QUESTION, stream=True)
        chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "draft 2 says Paris"
    assert all(c.usage is None for c in chunks)


def test_stream_ends_with_done_over_plain_http(served: Served) -> None:
    body = {"model": "default", "messages": QUESTION, "stream": True}
    with httpx2.stream("POST", served.v1 + "/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)


def test_a_budget_stop_before_the_last_round_streams_that_rounds_aggregate(
    serve: ServeFactory,
) -> None:
    from conclave.types import Completion, Usage

    fakes = default_fakes()
    calls: list[int] = []

    def costly(messages: Sequence[Message], options: SamplingOptions) -> Completion:
        calls.append(1)
        usage = Usage(prompt_tokens=1, completion_tokens=1, cost_usd=1.0)
        return Completion(model="agg", text=f"round {len(calls)} answer", usage=usage)

    fakes["agg"] = FunctionModel(costly)
    served = serve(fakes=fakes, configs=[make_config(iterations=3, budget_usd=0.5)])
    chunks = list(
        served.openai().chat.completions.create(model="default", messages=QUESTION, stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "round 1 answer"


def test_an_early_stop_on_agreement_streams_the_agreed_answer_once(serve: ServeFactory) -> None:
    fakes = default_fakes()
    fakes["agg"] = FakeModel(["first take", "Paris it is", "Paris it is", "never asked"])
    served = serve(fakes=fakes, configs=[make_config(iterations=3, convergence_threshold=0.9)])
    api = served.openai()
    chunks = list(api.chat.completions.create(model="default", messages=QUESTION, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Paris it is"
    assert len(fakes["agg"].history) == 3


def test_models_lists_default_and_every_preset(serve: ServeFactory) -> None:
    fakes = default_fakes()
    served = serve(fakes=fakes, configs=[make_config(name="first"), make_config(name="second")])
    models = served.openai().models.list()
    assert [m.id for m in models.data] == ["default", "first", "second"]
    assert (models.data[0].model_extra or {})["alias_of"] == "first"
    assert (models.data[1].model_extra or {})["members"] == ["a", "b", "c"]


def test_unknown_model_is_a_404_in_openais_shape(served: Served) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        served.openai().chat.completions.create(model="gpt-4o", messages=QUESTION)
    assert caught.value.status_code == 404
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == "model_not_found"
    assert body["param"] == "model"
    assert "default" in body["message"]
    assert "panel" in body["message"]


def test_a_failing_member_still_answers_and_the_transcript_keeps_the_failure(
    serve: ServeFactory,
) -> None:
    fakes = default_fakes()
    fakes["b"] = FakeModel(default=ProviderHTTPError("b: HTTP 500: upstream down", status_code=500))
    served = serve(fakes=fakes)
    response = httpx2.post(
        served.v1 + "/chat/completions", json={"model": "default", "messages": QUESTION}
    )
    assert response.status_code == 200
    completion = response.json()
    assert completion["choices"][0]["message"]["content"] == "The capital of France is Paris."
    b = completion["conclave"]["members"][1]
    assert (b["model"], b["answered"], b["failed"]) == ("b", 0, 2)
    assert b["failures"][0]["type"] == "http_error"

    transcript_id = response.headers["x-conclave-transcript-id"]
    transcript = httpx2.get(f"{served.v1}/transcripts/{transcript_id}").json()
    failed = [r for r in transcript["rounds"][0]["responses"] if r["error"]]
    assert [(r["model"], r["error"]["status_code"]) for r in failed] == [("b", 500)]
    assert "upstream down" in failed[0]["error"]["message"]


def test_below_quorum_is_a_502_naming_the_failures(serve: ServeFactory) -> None:
    fakes = default_fakes()
    fakes["a"] = FakeModel(default=ProviderTimeoutError("a: no answer within 5 s"))
    fakes["c"] = FakeModel(default=ProviderHTTPError("c: HTTP 503: overloaded", status_code=503))
    served = serve(fakes=fakes, configs=[make_config(quorum=2)])

    with pytest.raises(openai.APIStatusError) as caught:
        served.openai().chat.completions.create(model="default", messages=QUESTION)
    assert caught.value.status_code == 502
    body = caught.value.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == "quorum_not_reached"
    assert body["error"]["type"] == "server_error"
    assert "below the quorum of 2" in body["error"]["message"]
    assert {(f["model"], f["type"]) for f in body["failures"]} == {
        ("a", "timeout"),
        ("c", "http_error"),
    }
    # the partial transcript is kept
    kept = httpx2.get(f"{served.v1}/transcripts/{body['transcript_id']}").json()
    assert kept["stop_reason"] == "quorum_lost"


def test_below_quorum_while_streaming_raises_in_the_client(serve: ServeFactory) -> None:
    fakes = default_fakes()
    for name in ("a", "b", "c"):
        fakes[name] = FakeModel(default=ProviderHTTPError(f"{name}: HTTP 500", status_code=500))
    served = serve(fakes=fakes)
    stream = served.openai().chat.completions.create(
        model="default", messages=QUESTION, stream=True
    )
    with pytest.raises(openai.APIError, match="below the quorum"):
        list(stream)


def test_a_conversation_without_a_user_message_is_a_400(served: Served) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        served.openai().chat.completions.create(
            model="default", messages=[{"role": "system", "content": "Be brief."}]
        )
    assert caught.value.status_code == 400
    assert "no user message" in caught.value.message


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "default"}, 400, "messages"),
        ({"model": "default", "messages": []}, 400, "messages"),
        (
            {"model": "default", "messages": [{"role": "tool", "content": "x"}]},
            400,
            "messages[0].role",
        ),
        ({"model": "default", "messages": [{"role": "user"}]}, 400, "messages[0].content"),
        ({"messages": QUESTION}, 400, "model"),
        ({"model": "default", "messages": QUESTION, "n": 2}, 400, "n"),
    ],
)
def test_bad_bodies_name_the_field(
    served: Served, body: dict[str, object], status: int, param: str
) -> None:
    response = httpx2.post(served.v1 + "/chat/completions", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert param in error["message"]


def test_a_body_that_is_not_json_is_a_400(served: Served) -> None:
    response = httpx2.post(
        served.v1 + "/chat/completions",
        content=b'{"model": "default", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


async def test_a_hundred_concurrent_requests_each_get_their_own_answer(
    serve: ServeFactory,
) -> None:
    def echo(messages: Sequence[Message], options: SamplingOptions) -> str:
        # Members see the question; the aggregator sees it in the candidates and conversation.
        found = re.search(r"question \d+", " ".join(m.content for m in messages))
        assert found is not None
        return f"answer to {found.group()}"

    fakes: Fakes = {name: FunctionModel(echo, latency_s=0.05) for name in ("a", "b", "c", "agg")}
    served = serve(fakes=fakes)
    async with async_client(served) as api:

        async def ask(i: int) -> str | None:
            question: list[ChatCompletionMessageParam] = [
                {"role": "user", "content": f"question {i}"}
            ]
            completion = await api.chat.completions.create(model="default", messages=question)
            return completion.choices[0].message.content

        answers = await asyncio.gather(*(ask(i) for i in range(100)))
    assert answers == [f"answer to question {i}" for i in range(100)]
