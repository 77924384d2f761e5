"""The OpenAI-compatible provider against a real peer: `llama_cpp.server` serving SmolLM2 on
127.0.0.1 (see the `llama_server_url` fixture), and against a port where nothing listens."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from conclave.errors import ProviderConnectionError
from conclave.providers.openai_compat import OpenAICompatibleProvider
from conclave.types import Completion, Message, SamplingOptions, TextDelta

MODEL = "smollm2-135m"  # the alias the fixture serves it under
QUESTION = [Message(role="user", content="What is the capital of France?")]
OPTIONS = SamplingOptions(max_tokens=16, temperature=0.0, seed=1)


@pytest.fixture
async def peer(llama_server_url: str) -> AsyncIterator[OpenAICompatibleProvider]:
    provider = OpenAICompatibleProvider(
        base_url=llama_server_url, api_key=None, name="llama.cpp", max_retries=0, timeout_s=60
    )
    yield provider
    await provider.aclose()


@pytest.mark.embedded
async def test_complete_against_a_real_llama_server(peer: OpenAICompatibleProvider) -> None:
    completion = await peer.complete(MODEL, QUESTION, OPTIONS)

    assert completion.model == MODEL
    assert completion.text.strip()  # an answer arrives; what a 135M model knows is not tested
    assert completion.finish_reason in {"stop", "length"}
    assert completion.usage.prompt_tokens > 10
    assert 0 < completion.usage.completion_tokens <= 16


@pytest.mark.embedded
async def test_stream_against_a_real_llama_server(peer: OpenAICompatibleProvider) -> None:
    deltas: list[str] = []
    completions: list[Completion] = []
    async for item in peer.stream(MODEL, QUESTION, OPTIONS):
        if isinstance(item, TextDelta):
            deltas.append(item.text)
        else:
            completions.append(item)

    assert len(deltas) >= 2
    [completion] = completions
    assert completion.text == "".join(deltas)
    assert completion.text.strip()
    assert completion.finish_reason in {"stop", "length"}


@pytest.mark.embedded
async def test_a_tiny_max_tokens_is_flagged_as_length(peer: OpenAICompatibleProvider) -> None:
    completion = await peer.complete(MODEL, QUESTION, SamplingOptions(max_tokens=2))

    assert completion.finish_reason == "length"
    assert completion.truncated


@pytest.mark.embedded
async def test_list_models_shows_the_served_model(peer: OpenAICompatibleProvider) -> None:
    assert [info.id for info in await peer.list_models()] == [MODEL]


async def test_a_dead_port_is_a_connection_error() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = OpenAICompatibleProvider(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=None, max_retries=0, timeout_s=5
    )
    try:
        with pytest.raises(ProviderConnectionError, match=f"127.0.0.1:{port}") as caught:
            await provider.complete(MODEL, QUESTION, OPTIONS)
        assert caught.value.model == MODEL
    finally:
        await provider.aclose()
