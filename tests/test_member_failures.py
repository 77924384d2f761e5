"""Whatever a member raises is that member's failure, recorded in the transcript; and a config
whose embedded packs are missing is refused before the first request."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conclave import cli
from conclave.config import ConsensusConfig
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.panel import build_panel
from conclave.errors import ModelPackMissingError
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.types import Message

QUESTION = (Message(role="user", content="Capital of France?"),)


def config_of(members: list[str], aggregator: str) -> ConsensusConfig:
    return ConsensusConfig.model_validate(
        {
            "models": [{"id": member} for member in members],
            "aggregator": [{"model": {"id": aggregator}}],
            "iterations": 0,
        }
    )


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (
            ModelPackMissingError("the pack 'x' is not installed"),
            "a: the pack 'x' is not installed",
        ),
        (KeyError("choices"), "a: KeyError: 'choices'"),
        (AttributeError("'NoneType' object has no attribute 'text'"), "a: AttributeError"),
    ],
)
async def test_any_exception_of_a_member_is_its_failed_call(
    raised: Exception, expected: str
) -> None:
    fakes: dict[str, FakeModel | FunctionModel] = {
        "a": FakeModel(default=raised),
        "b": FakeModel(default="Paris."),
        "c": FakeModel(default="Paris!"),
        "agg": FakeModel(default="Paris."),
    }
    config = config_of(["a", "b", "c"], "agg")
    registry = ProviderRegistry(overrides={"openrouter": FakeProvider(fakes)})
    engine = ConsensusEngine(config, build_panel(config, registry), rng=random.Random(0))

    transcript = await engine.run_to_end(QUESTION)

    assert transcript.answer == "Paris."
    failed = transcript.rounds[0].responses[0]
    assert failed.error is not None
    assert failed.error.message.startswith(expected)
    assert [call.ok for call in transcript.rounds[0].responses] == [False, True, True]


def test_config_check_names_an_embedded_pack_that_is_not_installed(
    tmp_path: Path, qwen_pack_not_installed: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config_of(["local:qwen2.5-0.5b", "b"], "b").model_dump()))

    result = CliRunner().invoke(cli.app, ["config", "check", str(path)])

    assert result.exit_code == 1
    assert "'qwen2.5-0.5b' is not installed" in result.output
    assert "pip install" in result.output
