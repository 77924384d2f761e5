"""A swarm over HTTP, on a real uvicorn: the event stream carries the plan and every step,
the OpenAI API answers (streamed or not) with the orchestrator's answer, and the kept
transcript holds the plan and every step's result."""

from __future__ import annotations

import httpx2
from openai.types.chat import ChatCompletionMessageParam

from swarm_fakes import AGENTS, FINAL, swarm_fakes

from .conftest import Served, ServeFactory, make_config, read_events

QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Part 1: 6 * 7?\nPart 2: Capital of Peru?\nPart 3: Add 1."}
]


def swarm_server(serve: ServeFactory) -> Served:
    config = make_config(
        ("a", "b"), name="swarm", strategy="swarm", strategy_options={"agents": AGENTS}
    )
    return serve(fakes=swarm_fakes(), configs=[config])


def test_the_event_stream_carries_the_plan_and_each_steps_progress(serve: ServeFactory) -> None:
    served = swarm_server(serve)

    events = read_events(served.v1, {"model": "swarm", "messages": QUESTION})

    progress = [data for name, data in events if name == "step_progress"]
    plan = next(p for p in progress if p["name"] == "plan" and p["status"] == "finished")
    report = plan["report"]
    assert isinstance(report, dict)
    assert report["kind"] == "swarm"
    assert [s["agent"] for s in report["plan"]["plan"]["steps"]] == ["math", "facts", "math"]
    ends = {p["name"]: p["status"] for p in progress if p["status"] in ("finished", "failed")}
    assert ends == {
        "plan": "finished",
        "step 1": "finished",
        "step 2": "failed",
        "step 3": "finished",
    }
    calls = [p["call"] for p in progress if p["call"] is not None]
    assert any(isinstance(c, dict) and c["model"] == "step 1 math: a" for c in calls)
    name, done = events[-1]
    transcript = done["transcript"]
    assert name == "done"
    assert isinstance(transcript, dict)
    assert transcript["answer"] == FINAL


def test_the_openai_api_answers_with_the_orchestrators_answer(serve: ServeFactory) -> None:
    served = swarm_server(serve)
    client = served.openai()

    answer = client.chat.completions.create(model="swarm", messages=QUESTION)
    streamed = client.chat.completions.create(model="swarm", messages=QUESTION, stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices]

    assert answer.choices[0].message.content == FINAL
    assert "".join(pieces) == FINAL


def test_the_kept_transcript_holds_the_plan_and_every_steps_result(serve: ServeFactory) -> None:
    served = swarm_server(serve)
    response = httpx2.post(
        served.v1 + "/chat/completions", json={"model": "swarm", "messages": QUESTION}
    )
    transcript_id = response.headers["x-conclave-transcript-id"]

    kept = httpx2.get(f"{served.v1}/transcripts/{transcript_id}").json()

    [step] = kept["rounds"][0]["steps"]
    assert step["step"] == "swarm"
    statuses = [result["status"] for result in step["report"]["steps"]]
    assert statuses == ["done", "failed", "done"]
    assert {call["model"] for call in step["calls"]} >= {"step 1 math: a", "step 2 facts: b"}
