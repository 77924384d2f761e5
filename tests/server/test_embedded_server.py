"""The service on the real embedded models: what `docker run conclave` answers with, no key
and no network."""

from __future__ import annotations

import asyncio

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
