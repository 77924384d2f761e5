"""Whole consensus runs on real components: the embedded llama.cpp models, a real
`llama_cpp.server` peer on 127.0.0.1, and the `conclave` command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conclave.config import AggregatorSpec, ConsensusConfig, ModelSpec
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.events import MemberAnswered, MemberFailed
from conclave.consensus.panel import build_panel
from conclave.consensus.strategies.adaptive import REASONING_PROMPT
from conclave.presets import embedded_config
from conclave.providers.local import LocalProvider
from conclave.providers.registry import ProviderRegistry
from conclave.types import Message

pytestmark = pytest.mark.embedded

QUESTION = (Message(role="user", content="What is 17 + 25? Answer with the number."),)


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


async def test_the_embedded_preset_reaches_a_consensus(local_provider: LocalProvider) -> None:
    preset = embedded_config()
    never_sure = {"sure_probability": 1.0, "sure_by_kind": {}}  # it escalates
    config = preset.with_changes(strategy_options={**preset.strategy_options, **never_sure})
    panel = build_panel(config, ProviderRegistry(overrides={"local": local_provider}))
    transcript = await ConsensusEngine(config, panel).run_to_end(QUESTION)

    strongest = config.models[0].display_name
    assert [r.model for r in transcript.rounds[0].responses] == [strongest]
    assert transcript.rounds[0].responses[0].token_probability is not None  # asked of llama.cpp
    for round_ in transcript.rounds:
        for response in round_.responses:
            assert response.ok, response.error
            assert response.text.strip()
            assert response.usage.completion_tokens > 0
        assert round_.aggregate is not None
        assert round_.decided_by == "vote"
        assert round_.agreement is not None
    # the first answer was not sure enough, so it is worked out step by step
    assert len(transcript.rounds) >= 2
    assert transcript.sent(transcript.rounds[1].responses[0])[-1].content == REASONING_PROMPT
    assert transcript.stop_reason in {"agreed", "iterations"}
    assert transcript.answer.strip()
    assert transcript.agreement is not None
    assert transcript.agreement.supporters


async def test_flares_algorithm_carries_the_consensus_into_the_improvement_round(
    local_provider: LocalProvider,
) -> None:
    config = ConsensusConfig(
        models=(
            ModelSpec(id="local:smollm2-135m", max_tokens=48, temperature=0.2),
            ModelSpec(id="local:qwen2.5-0.5b", max_tokens=48, temperature=0.2),
        ),
        aggregator=(AggregatorSpec(model=ModelSpec(id="local:qwen2.5-0.5b", max_tokens=64)),),
        iterations=1,
    )
    panel = build_panel(config, ProviderRegistry(overrides={"local": local_provider}))
    transcript = await ConsensusEngine(config, panel).run_to_end(QUESTION)

    assert [len(r.responses) for r in transcript.rounds] == [2, 2]
    for round_ in transcript.rounds:
        for response in round_.responses:
            assert response.ok, response.error
            assert response.text.strip()
            assert response.usage.completion_tokens > 0
            assert response.latency_s > 0
        assert round_.aggregate is not None
        assert round_.aggregate.ok
    # round 1 really carried the first consensus back to the members
    first_consensus = transcript.rounds[0].aggregate
    assert first_consensus is not None
    sent = transcript.sent(transcript.rounds[1].responses[0])
    assert sent[-2].content == f"Consensus: {first_consensus.text}"
    final = transcript.rounds[1].aggregate
    assert final is not None
    # "Answer with the number": the answer is the number the aggregate's text gives, and that
    # text is kept as the reasoning when it says more
    assert transcript.answer == transcript.rounds[1].consensus
    assert transcript.reasoning in ("", final.text)
    assert transcript.usage.completion_tokens == sum(
        c.usage.completion_tokens
        for r in transcript.rounds
        for c in (*r.responses, r.aggregate)
        if c is not None
    )


async def test_a_dead_member_fails_alone_beside_a_real_server_and_a_local_model(
    local_provider: LocalProvider, llama_server_url: str
) -> None:
    dead_url = f"http://127.0.0.1:{_closed_port()}/v1"
    config = ConsensusConfig(
        models=(
            ModelSpec(id="local:qwen2.5-0.5b", max_tokens=32, temperature=0.0, label="local qwen"),
            ModelSpec(id="smollm2-135m", base_url=llama_server_url, max_tokens=32, label="peer"),
            ModelSpec(id="smollm2-135m", base_url=dead_url, max_tokens=32, label="dead"),
        ),
        aggregator=(
            AggregatorSpec(
                model=ModelSpec(id="local:qwen2.5-0.5b", max_tokens=48, temperature=0.0)
            ),
        ),
        iterations=0,
        quorum=2,
        timeout_s=120,
    )
    registry = ProviderRegistry(overrides={"local": local_provider})
    try:
        events = [
            e async for e in ConsensusEngine(config, build_panel(config, registry)).run(QUESTION)
        ]
    finally:
        await registry.aclose()

    answered = {e.response.model for e in events if isinstance(e, MemberAnswered)}
    failed = {e.response.model: e.response.error for e in events if isinstance(e, MemberFailed)}
    assert answered == {"local qwen", "peer"}
    assert list(failed) == ["dead"]
    error = failed["dead"]
    assert error is not None
    assert error.type == "connection_error"
    done = events[-1]
    assert done.kind == "done"
    assert done.transcript.answer.strip()


def test_conclave_ask_prints_a_real_consensus(models_dir: Path, tmp_path: Path) -> None:
    """The README's first command, on the real models, as a user runs it."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(models_dir, target_is_directory=True)
    env = {**os.environ, "CONCLAVE_HOME": str(home), "CONCLAVE_THREADS": "2"}
    result = subprocess.run(
        [sys.executable, "-m", "conclave.cli", "ask", "What is 17 + 25?", "--json", "-n", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    transcript = json.loads(result.stdout)
    assert transcript["answer"].strip()
    assert [r["model"] for r in transcript["rounds"][0]["responses"]] == ["local:qwen2.5-1.5b"]
    assert "answered in" in result.stderr  # progress lines, since stderr is not a terminal
    assert "Traceback" not in result.stderr
