"""Grounded answers over HTTP, through the official `openai` client against real uvicorn: the
`documents` request field, OpenAI's `message.annotations` citations, conclave's `grounding`
summary, streaming, and the errors for a collection that cannot be used."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from conclave.consensus.grounding import ABSTENTION
from conclave.documents import add_documents, open_library
from conclave.providers.testing import FunctionModel
from server.conftest import Fakes, Served, ServeFactory, make_config
from test_grounding_runs import FACTS, TRAIN_QUESTION, panel_member


@pytest.fixture
def grounded_server(home: Path, tmp_path: Path, serve: ServeFactory) -> Served:
    """A server whose members answer from the passages, with the collection `facts`."""
    folder = tmp_path / "facts"
    folder.mkdir()
    for name, text in FACTS.items():
        (folder / name).write_text(text, "utf-8")
    add_documents(open_library(), "facts", [folder])
    fakes: Fakes = {name: FunctionModel(panel_member) for name in ("a", "b", "c", "agg")}
    return serve(fakes=fakes, configs=[make_config(iterations=0)])


def test_annotations_cite_the_passages_through_the_openai_client(grounded_server: Served) -> None:
    client = grounded_server.openai()
    completion = client.chat.completions.create(
        model="panel",
        messages=[{"role": "user", "content": TRAIN_QUESTION}],
        extra_body={"documents": "facts"},
    )
    message = completion.choices[0].message
    assert message.content == "The night train leaves London Euston at nine in the evening [1]."
    [annotation] = message.annotations or []
    assert annotation.type == "url_citation"
    cited = annotation.url_citation
    assert message.content[cited.start_index : cited.end_index] == "[1]"
    assert cited.title == "trains"
    assert cited.url.startswith("file:///")
    assert cited.url.endswith("/facts/trains.txt#char=0,73")
    grounding = (completion.model_extra or {})["conclave"]["grounding"]
    assert grounding["collection"] == "facts"
    assert grounding["abstained"] is False
    assert grounding["citations"][0]["path"].endswith("trains.txt")
    assert grounding["passages"][0]["passage"]["text"].startswith("The night train")
    assert grounding["citation_recall"] == 1.0


def test_an_answer_not_in_the_documents_abstains(grounded_server: Served) -> None:
    completion = grounded_server.openai().chat.completions.create(
        model="panel",
        messages=[{"role": "user", "content": "What is the capital of Peru?"}],
        extra_body={"documents": "facts"},
    )
    assert completion.choices[0].message.content == ABSTENTION
    assert not completion.choices[0].message.annotations
    assert (completion.model_extra or {})["conclave"]["grounding"]["abstained"] is True


def test_a_grounded_stream_sends_the_checked_answer_and_its_annotations(
    grounded_server: Served,
) -> None:
    stream = grounded_server.openai().chat.completions.create(
        model="panel",
        messages=[{"role": "user", "content": TRAIN_QUESTION}],
        extra_body={"documents": "facts"},
        stream=True,
    )
    text = ""
    annotations: list[object] = []
    summaries: list[dict[str, object]] = []
    for chunk in stream:
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is not None:
            text += delta.content or ""
            annotations += (delta.model_extra or {}).get("annotations") or []
        if chunk.choices and chunk.choices[0].finish_reason is not None:
            summaries.append((chunk.model_extra or {})["conclave"])
    assert text == "The night train leaves London Euston at nine in the evening [1]."
    assert len(annotations) == 1
    [summary] = summaries
    assert summary["decided_by"] == "aggregator"


def test_a_collection_that_cannot_be_used_is_refused(grounded_server: Served) -> None:
    client = grounded_server.openai()
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": TRAIN_QUESTION}]
    with pytest.raises(openai.NotFoundError, match="no document collection named 'nope'"):
        client.chat.completions.create(
            model="panel",
            messages=messages,
            extra_body={"documents": "nope"},
        )
    with pytest.raises(openai.BadRequestError, match="not a valid collection name"):
        client.chat.completions.create(
            model="panel",
            messages=messages,
            extra_body={"documents": "../etc"},
        )
    assert all(not fake.history for fake in grounded_server.fakes.values())


def test_the_event_stream_takes_documents_too(grounded_server: Served) -> None:
    body = {
        "model": "panel",
        "documents": "facts",
        "messages": [{"role": "user", "content": TRAIN_QUESTION}],
    }
    with httpx2.stream(
        "POST", grounded_server.v1 + "/consensus/stream", json=body, timeout=30
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    done = json.loads(lines[-1].removeprefix("data: "))
    assert done["transcript"]["citations"][0]["marker"] == 1
    assert done["transcript"]["prepared"][0]["report"]["collection"] == "facts"


def test_sampling_options_keep_a_grounded_answer_grounded(grounded_server: Served) -> None:
    client = grounded_server.openai()
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": TRAIN_QUESTION}]
    plain = client.chat.completions.create(model="panel", messages=messages, temperature=0.5)
    grounded = client.chat.completions.create(
        model="panel", messages=messages, temperature=0.5, extra_body={"documents": "facts"}
    )
    assert not plain.choices[0].message.annotations
    assert (plain.model_extra or {})["conclave"]["grounding"] is None
    [annotation] = grounded.choices[0].message.annotations or []
    assert annotation.url_citation.title == "trains"
    assert (grounded.model_extra or {})["conclave"]["grounding"]["collection"] == "facts"
