"""Strategies over HTTP: `<preset>:<strategy>` as the model, agreement in the `conclave` field
and the event stream, through the official client against a real uvicorn."""

from __future__ import annotations

import json

import httpx2
from openai.types.chat import ChatCompletionMessageParam

from conclave.errors import ProviderHTTPError
from conclave.providers.testing import FakeModel

from .conftest import Fakes, ServeFactory

QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Capital of Australia?\nA. Sydney\nB. Canberra\nC. Perth"}
]


def letter_fakes(aggregator: str | BaseException = "The answer is B.") -> Fakes:
    return {
        "a": FakeModel(default="B"),
        "b": FakeModel(default="B. Canberra"),
        "c": FakeModel(default="A"),
        "agg": FakeModel(default=aggregator),
    }


def test_a_strategy_is_chosen_per_request_by_the_model_name(serve: ServeFactory) -> None:
    served = serve(fakes=letter_fakes())
    answer = served.openai().chat.completions.create(model="panel:vote", messages=QUESTION)

    assert answer.choices[0].message.content == "B"
    assert answer.model == "panel:vote"
    summary = answer.model_extra["conclave"] if answer.model_extra else {}
    assert summary["strategy"] == "vote"
    assert summary["decided_by"] == "vote"
    assert summary["agreement"]["supporters"] == ["a", "b"]
    assert summary["agreement"]["answer"] == "B"
    assert served.fakes["agg"].history == []


def test_the_default_answer_carries_its_agreement(serve: ServeFactory) -> None:
    served = serve(fakes=letter_fakes())
    answer = served.openai().chat.completions.create(model="panel", messages=QUESTION)
    summary = answer.model_extra["conclave"] if answer.model_extra else {}
    assert summary["strategy"] == "flare"
    assert summary["decided_by"] == "aggregator"
    agreement = summary["agreement"]
    assert agreement["supporters"] == ["a", "b"]
    assert [cluster["answer"] for cluster in agreement["clusters"]] == ["B", "A"]
    assert 0.0 < agreement["confidence"] < 1.0


def test_a_failing_aggregator_still_answers_and_says_so(serve: ServeFactory) -> None:
    served = serve(fakes=letter_fakes(ProviderHTTPError("agg: down", status_code=503)))
    response = httpx2.post(
        served.v1 + "/chat/completions", json={"model": "panel", "messages": QUESTION}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "B"
    assert body["conclave"]["decided_by"] == "fallback_vote"


def test_an_unknown_strategy_is_a_404_listing_the_choices(serve: ServeFactory) -> None:
    served = serve()
    response = httpx2.post(
        served.v1 + "/chat/completions", json={"model": "panel:guess", "messages": QUESTION}
    )
    assert response.status_code == 404
    assert "<preset>:flare|vote|rank|sample|adaptive" in response.json()["error"]["message"]


def test_the_event_stream_carries_each_rounds_agreement(serve: ServeFactory) -> None:
    served = serve(fakes=letter_fakes())
    body = {"model": "panel:vote", "messages": QUESTION}
    with httpx2.stream("POST", served.v1 + "/consensus/stream", json=body) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    events = [json.loads(line.removeprefix("data: ")) for line in lines]
    finished = [event for event in events if event.get("kind") == "round_finished"]
    assert finished
    assert finished[-1]["record"]["agreement"]["supporters"] == ["a", "b"]
    assert events[-1]["transcript"]["agreement"]["answer"] == "B"
