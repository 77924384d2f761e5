"""JSON answers constrained to a schema: how each provider asks for them, and that the real
embedded models (down to the 135M) write JSON the schema accepts when they are constrained."""

from __future__ import annotations

import json
import re

import httpx2
import jsonschema_rs
import pytest

from conclave.consensus.planning import PlanLimits, plan_schema, read_plan
from conclave.errors import ProviderHTTPError
from conclave.providers.local import LocalProvider
from conclave.providers.openai_compat import OpenAICompatibleProvider
from conclave.types import JsonSchema, Message, SamplingOptions
from provider_http import ScriptedServer

BASE_URL = "http://127.0.0.1:8080/v1"
MODEL = "qwen2.5-0.5b-instruct"
AGENTS = ("math", "facts")
SCHEMA = plan_schema(AGENTS, PlanLimits(max_steps=3))
PLAN = {"steps": [{"id": 1, "agent": "math", "instruction": "6*7?", "depends_on": []}]}
PLAN_OPENING = re.compile(
    r'\{\s*"steps"\s*:\s*\[\s*\{\s*"id"\s*:\s*1\s*,\s*"agent"\s*:\s*"(math|facts)"'
)
TASK = [
    Message(
        role="system",
        content="Split the task into steps for the agents math (numbers) and facts (facts). "
        "Reply with the plan as JSON.",
    ),
    Message(role="user", content="Part 1: What is 6 * 7? Part 2: What is the capital of Peru?"),
]


def answer(text: str) -> httpx2.Response:
    return httpx2.Response(
        200,
        json={
            "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5},
        },
    )


def refused(status: int, message: str) -> httpx2.Response:
    return httpx2.Response(status, json={"error": {"message": message}})


def provider(server: ScriptedServer) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        base_url=BASE_URL, api_key=None, max_retries=0, http_client=server.client()
    )


def sent_format(server: ScriptedServer, index: int) -> object:
    body = server.body(index)
    assert isinstance(body, dict)
    return body.get("response_format")


async def test_a_schema_goes_out_as_openai_structured_output() -> None:
    server = ScriptedServer(answer(json.dumps(PLAN)))

    completion = await provider(server).complete(MODEL, TASK, SamplingOptions(json_schema=SCHEMA))

    assert json.loads(completion.text) == PLAN
    assert sent_format(server, 0) == {
        "type": "json_schema",
        "json_schema": {"name": "swarm_plan", "schema": SCHEMA.value(), "strict": True},
    }


async def test_without_a_schema_no_response_format_is_sent() -> None:
    server = ScriptedServer(answer("42"))
    await provider(server).complete(MODEL, TASK, SamplingOptions())
    assert sent_format(server, 0) is None


async def test_a_server_refusing_json_schema_is_asked_in_llama_cpp_form_then_remembered() -> None:
    # llama-cpp-python's server validates `type` as text | json_object: a 422 naming the field.
    rejection = {"detail": [{"loc": ["body", "response_format", "type"], "msg": "bad"}]}
    server = ScriptedServer(
        httpx2.Response(422, json=rejection), answer(json.dumps(PLAN)), answer(json.dumps(PLAN))
    )
    models = provider(server)

    await models.complete(MODEL, TASK, SamplingOptions(json_schema=SCHEMA))
    await models.complete(MODEL, TASK, SamplingOptions(json_schema=SCHEMA))

    assert [sent_format(server, i) for i in range(3)] == [
        {
            "type": "json_schema",
            "json_schema": {"name": "swarm_plan", "schema": SCHEMA.value(), "strict": True},
        },
        {"type": "json_object", "schema": SCHEMA.value()},
        {"type": "json_object", "schema": SCHEMA.value()},  # no second refusal
    ]


async def test_a_server_taking_no_format_at_all_is_asked_without_one() -> None:
    server = ScriptedServer(
        refused(400, "Invalid parameter: 'response_format' of type 'json_schema'"),
        refused(400, "Unrecognized request argument: response_format.schema"),
        answer("not json"),
    )

    completion = await provider(server).complete(MODEL, TASK, SamplingOptions(json_schema=SCHEMA))

    assert completion.text == "not json"  # left to the caller to check (the planner repairs)
    assert sent_format(server, 2) is None


async def test_a_bad_request_for_another_reason_is_not_retried_without_the_format() -> None:
    server = ScriptedServer(refused(400, "messages: too long for this model"))

    with pytest.raises(ProviderHTTPError, match="too long"):
        await provider(server).complete(MODEL, TASK, SamplingOptions(json_schema=SCHEMA))

    assert len(server.requests) == 1


def plan_is_valid(text: str) -> None:
    validator = jsonschema_rs.validator_for(SCHEMA.value())
    problems = [error.message for error in validator.iter_errors(json.loads(text))]
    assert problems == [], text
    assert not isinstance(read_plan(text, AGENTS, PlanLimits(max_steps=3)), tuple)


@pytest.mark.embedded
@pytest.mark.parametrize("pack", ["qwen2.5-1.5b", "smollm2-135m"])
async def test_an_embedded_model_constrained_by_the_plan_schema_writes_a_valid_plan(
    local_provider: LocalProvider, pack: str
) -> None:
    options = SamplingOptions(max_tokens=300, temperature=0.0, json_schema=SCHEMA)

    completion = await local_provider.complete(pack, TASK, options)

    assert completion.finish_reason == "stop", completion.text
    # Decoded under the schema's grammar: the plan opens as the schema forces it to (a 135M
    # model may then ramble inside an instruction until its token limit).
    assert PLAN_OPENING.match(completion.text), completion.text


@pytest.mark.embedded
async def test_a_schema_llama_cpp_cannot_turn_into_a_grammar_fails_the_call_clearly(
    local_provider: LocalProvider,
) -> None:
    odd = JsonSchema.of("odd", {"type": "string", "pattern": "no anchors"})
    options = SamplingOptions(max_tokens=8, json_schema=odd)

    with pytest.raises(Exception, match="cannot be turned into a grammar"):
        await local_provider.complete("smollm2-135m", TASK, options)


@pytest.mark.embedded
async def test_llama_cpp_server_as_a_peer_takes_the_schema_in_its_own_form(
    llama_server_url: str,
) -> None:
    peer = OpenAICompatibleProvider(
        base_url=llama_server_url, api_key=None, max_retries=0, timeout_s=120
    )
    options = SamplingOptions(max_tokens=300, temperature=0.0, json_schema=SCHEMA)
    try:
        completion = await peer.complete("smollm2-135m", TASK, options)
    finally:
        await peer.aclose()

    # Decoded under the schema's grammar: the plan opens as the schema forces it to (a 135M
    # model may then ramble inside an instruction until its token limit).
    assert PLAN_OPENING.match(completion.text), completion.text
