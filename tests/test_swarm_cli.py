"""`conclave ask --strategy swarm` on the embedded default (the packs replaced by fakes): the
embedded agents and orchestrator are chosen with no config, the progress of the plan and its
steps is printed, and the answer alone goes to stdout."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conclave import cli
from conclave.cli import common
from conclave.config import load_config
from conclave.consensus.swarm_config import SwarmOptions, embedded_agents
from conclave.presets import embedded_config
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.types import Message, SamplingOptions

runner = CliRunner()
EXAMPLE = Path("examples/swarm/embedded_swarm.json")
"""The embedded swarm's agents written out as a config, to start one's own from."""
PLAN = {
    "steps": [
        {"id": 1, "agent": "math", "instruction": "Answer part 1.", "depends_on": []},
        {"id": 2, "agent": "knowledge", "instruction": "Answer part 2.", "depends_on": []},
    ]
}


@pytest.fixture
def qwen(monkeypatch: pytest.MonkeyPatch) -> FunctionModel:
    """The embedded 1.5B as a fake: it plans, works steps out, and writes the answer."""

    def respond(messages: Sequence[Message], options: SamplingOptions) -> str:
        if options.json_schema is not None:
            return json.dumps(PLAN)
        if messages[0].content.startswith("You solve arithmetic"):
            return "6 * 7 = 42\nAnswer: 42"
        if messages[0].content.startswith("Answer with the answer only"):
            return "Lima"
        return "Part 1: 42\nPart 2: Lima"

    model = FunctionModel(respond)
    provider = FakeProvider(
        {
            "qwen2.5-1.5b": model,
            "qwen2.5-0.5b": FakeModel(default="Lima"),
            "smollm2-135m": FakeModel(default="Lima"),
        }
    )
    monkeypatch.setattr(
        common, "make_registry", lambda: ProviderRegistry(overrides={"local": provider})
    )
    return model


def test_ask_with_the_swarm_strategy_on_the_embedded_default(qwen: FunctionModel) -> None:
    result = runner.invoke(
        cli.app, ["ask", "--strategy", "swarm", "Part 1: 6 * 7?\nPart 2: Capital of Peru?"]
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Part 1: 42\nPart 2: Lima"
    assert "swarm plan finished: 2 steps: 1 math; 2 knowledge" in result.stderr
    assert "swarm step 1 finished: 42" in result.stderr
    assert "swarm step 2 finished: Lima" in result.stderr
    planning = [call for call in qwen.history if call.options.json_schema is not None]
    [schema] = {call.options.json_schema for call in planning}
    assert schema is not None
    assert '"enum":["math","knowledge"]' in schema.text  # the embedded agents


def test_ask_json_keeps_the_plan_and_every_step(qwen: FunctionModel) -> None:
    result = runner.invoke(cli.app, ["ask", "--strategy", "swarm", "--json", "Two parts."])

    assert result.exit_code == 0, result.output
    transcript = json.loads(result.stdout)
    [step] = transcript["rounds"][0]["steps"]
    assert step["report"]["plan"]["source"] == "first"
    assert [r["output"] for r in step["report"]["steps"]] == ["42", "Lima"]


def test_the_example_swarm_config_is_valid() -> None:
    result = runner.invoke(cli.app, ["config", "check", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout


def test_the_example_swarm_config_spells_out_the_embedded_swarm() -> None:
    config = load_config(EXAMPLE)
    options = SwarmOptions.model_validate(config.strategy_options)
    assert config.models == embedded_config().models
    assert options.agents == embedded_agents([spec.id for spec in config.models])
