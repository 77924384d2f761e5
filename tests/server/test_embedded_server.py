"""The service on the real embedded models: what `docker run conclave` answers with, no key
and no network."""

from __future__ import annotations

import asyncio

import httpx2
import openai
import pytest

from conclave.presets import embedded_config
from conclave.providers.registry import ProviderRegistry
from conclave.server import ServerSettings, create_app

from .conftest import run_server

pytestmark = pytest.mark.embedded


def test_the_embedded_preset_answers_an_openai_client() -> None:
    config = embedded_config().with_changes(iterations=0)
    registry = ProviderRegistry()
    app = create_app(
        [(config.name, config)],
        settings=ServerSettings(_env_file=None),
        registry=registry,
    )
    server, thread, url = run_server(app)
    try:
        with openai.OpenAI(
            base_url=url + "/v1", api_key="unused", max_retries=0, timeout=300
        ) as api:
            completion = api.chat.completions.create(
                model="default",
                messages=[{"role": "user", "content": "What is the capital of France? One word."}],
            )
        assert completion.model == "embedded"
        assert (completion.choices[0].message.content or "").strip()  # an answer, any words
        assert completion.choices[0].finish_reason in {"stop", "length"}
        summary = (completion.model_extra or {})["conclave"]
        assert summary["strategy"] == "adaptive"
        assert len(summary["members"]) == 3
        assert summary["members"][0]["answered"] >= 1  # the strongest answers first
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        asyncio.run(registry.aclose())


def test_max_tokens_caps_every_embedded_call_and_the_answer() -> None:
    config = embedded_config().with_changes(iterations=0)
    registry = ProviderRegistry()
    app = create_app(
        [(config.name, config)],
        settings=ServerSettings(_env_file=None),
        registry=registry,
    )
    server, thread, url = run_server(app)
    try:
        with openai.OpenAI(
            base_url=url + "/v1", api_key="unused", max_retries=0, timeout=300
        ) as api:
            completion = api.chat.completions.create(
                model="default",
                messages=[{"role": "user", "content": "Describe Paris in three sentences."}],
                max_tokens=5,
            )
        run_id = (completion.model_extra or {})["conclave"]["transcript_id"]
        transcript = httpx2.get(f"{url}/v1/transcripts/{run_id}", timeout=30).json()
        calls = [
            call
            for record in transcript["rounds"]
            for call in (*record["responses"], *record["other_calls"], record["aggregate"])
            if call is not None and call["error"] is None
        ]
        tokens = [call["usage"]["completion_tokens"] for call in calls]
        assert max(tokens) == 5  # asked to describe Paris at length, every call stopped at 5
        assert all(count <= 5 for count in tokens)
        assert completion.choices[0].finish_reason == "length"  # 5 tokens cut the answer
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        asyncio.run(registry.aclose())
