"""The command line, through Typer's runner, with fake models behind the registry."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from conclave import cli
from conclave.cli import common
from conclave.errors import ProviderHTTPError
from conclave.providers.local import LocalProvider, _HookedLlama, _Model
from conclave.providers.openrouter import OpenRouterProvider
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.settings import Settings
from conclave.types import Message, ModelInfo, SamplingOptions

EXAMPLES = Path(__file__).parent.parent / "examples"
runner = CliRunner()


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeModel | FunctionModel]:
    """Every embedded model of the default preset, replaced by a fake."""
    models: dict[str, FakeModel | FunctionModel] = {
        "smollm2-135m": FakeModel(default="Paris, I think."),
        "qwen2.5-0.5b": FakeModel(default="The capital of France is Paris."),
        "qwen2.5-1.5b": FakeModel(default="The capital of France is Paris."),
    }
    provider = FakeProvider(models)
    monkeypatch.setattr(
        common, "make_registry", lambda: ProviderRegistry(overrides={"local": provider})
    )
    return models


def test_ask_prints_the_consensus_on_stdout(fakes: dict[str, FakeModel | FunctionModel]) -> None:
    result = runner.invoke(cli.app, ["ask", "What is the capital of France?"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "The capital of France is Paris."
    # adaptive: the 1.5B answers, reasons it out (a fake reports no token probability, so it
    # is never sure at once), agrees with itself; the small models are never asked
    assert len(fakes["qwen2.5-1.5b"].history) == 2
    assert fakes["smollm2-135m"].history == []


def test_ask_json_holds_the_whole_transcript(fakes: dict[str, FakeModel | FunctionModel]) -> None:
    result = runner.invoke(
        cli.app,
        [
            *("ask", "Capital of France?", "--json", "-n", "0"),
            *("--system", "Be brief.", "--strategy", "flare"),
        ],
    )
    assert result.exit_code == 0, result.output
    transcript = json.loads(result.stdout)
    assert transcript["answer"] == "The capital of France is Paris."
    assert transcript["conversation"][0] == {"role": "system", "content": "Be brief."}
    (round_,) = transcript["rounds"]
    for response in round_["responses"]:
        assert {"model", "text", "error", "finish_reason", "usage", "latency_s"} <= response.keys()
        assert response["error"] is None
    assert round_["aggregate"]["model"] == "local:qwen2.5-1.5b (aggregator)"
    assert {"prompt_tokens", "completion_tokens", "cost_usd"} <= transcript["usage"].keys()


def test_ask_reports_a_failing_member_and_still_answers(
    fakes: dict[str, FakeModel | FunctionModel],
) -> None:
    fakes["smollm2-135m"] = FakeModel(default=ProviderHTTPError("smollm2: broke", status_code=500))
    result = runner.invoke(cli.app, ["ask", "Capital of France?", "-n", "0", "--strategy", "flare"])
    assert result.exit_code == 0, result.output
    assert "local:smollm2-135m failed: smollm2: broke" in result.stderr
    assert result.stdout.strip() == "The capital of France is Paris."


def test_ask_below_quorum_exits_1_listing_failures_and_keeps_the_transcript(
    fakes: dict[str, FakeModel | FunctionModel], tmp_path: Path
) -> None:
    config = tmp_path / "strict.json"
    config.write_text(
        json.dumps(
            {
                "models": [{"id": "local:smollm2-135m"}, {"id": "local:qwen2.5-0.5b"}],
                "aggregator": [{"model": {"id": "local:qwen2.5-0.5b"}}],
                "quorum": 2,
            }
        )
    )
    fakes["smollm2-135m"] = FakeModel(default=ProviderHTTPError("smollm2: broke", status_code=500))
    result = runner.invoke(cli.app, ["ask", "Hi", "--config", str(config), "--json"])
    assert result.exit_code == 1
    assert "below the quorum of 2" in result.stderr
    assert "smollm2: broke" in result.stderr
    assert "Traceback" not in result.output
    partial = json.loads(result.stdout)
    assert partial["stop_reason"] == "quorum_lost"
    assert partial["rounds"][0]["responses"][1]["text"] == "The capital of France is Paris."


def test_config_check_accepts_flares_file() -> None:
    result = runner.invoke(cli.app, ["config", "check", str(EXAMPLES / "flare_input.json")])
    assert result.exit_code == 0
    assert "valid: 3 models" in result.stdout


def test_config_check_names_the_bad_field_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "input.json"
    bad.write_text(json.dumps({"models": [{"id": "a", "temperature": "hot"}], "aggregator": []}))
    result = runner.invoke(cli.app, ["config", "check", str(bad)])
    assert result.exit_code == 1
    assert "$.models[0].temperature: Input should be a valid number" in result.stderr
    assert 'found "hot"' in result.stderr
    assert "$.aggregator: exactly one aggregator entry is needed" in result.stderr
    assert "Traceback" not in result.output


def test_config_show_prints_a_loadable_config(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["config", "show"])
    assert result.exit_code == 0
    saved = tmp_path / "embedded.json"
    saved.write_text(result.stdout)
    check = runner.invoke(cli.app, ["config", "check", str(saved)])
    assert check.exit_code == 0, check.output


def test_complete_streams_one_models_answer(fakes: dict[str, FakeModel | FunctionModel]) -> None:
    fakes["qwen2.5-0.5b"] = FunctionModel(lambda messages, options: f"echo: {messages[-1].content}")
    result = runner.invoke(
        cli.app, ["complete", "--prompt", "hello there", "--model", "local:qwen2.5-0.5b"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "echo: hello there"


def test_complete_rejects_bad_options_plainly() -> None:
    result = runner.invoke(
        cli.app, ["complete", "-p", "x", "-m", "m", "--base-url", "localhost:8000"]
    )
    assert result.exit_code == 1
    assert "$.base_url: must start with http:// or https://" in result.stderr


def test_chat_keeps_the_conversation_across_turns(
    fakes: dict[str, FakeModel | FunctionModel],
) -> None:
    seen: list[tuple[Message, ...]] = []

    def remember(messages: Sequence[Message], options: SamplingOptions) -> str:
        seen.append(tuple(messages))
        return f"answer {len(seen)}"

    fakes["qwen2.5-1.5b"] = FunctionModel(remember)
    result = runner.invoke(
        cli.app,
        ["chat", "-n", "0", "--strategy", "flare"],
        input="first question\n\nsecond question\nexit\n",
    )
    assert result.exit_code == 0, result.output
    assert "conclave>" in result.stdout
    last_turn = next(m for m in reversed(seen) if m[0].role == "user" and len(m) == 3)
    assert [m.role for m in last_turn] == ["user", "assistant", "user"]
    assert last_turn[0].content == "first question"
    assert last_turn[2].content == "second question"


def test_chat_keeps_one_registry_for_every_turn_and_closes_it_at_the_end(
    fakes: dict[str, FakeModel | FunctionModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The models stay loaded between turns: one registry (so one LocalProvider with its
    loaded Llamas) serves the whole chat, and is closed once, when the user leaves."""
    provider = FakeProvider(fakes)
    qwen = fakes["qwen2.5-1.5b"]
    closed_after_calls: list[int] = []

    class RecordingRegistry(ProviderRegistry):
        async def aclose(self) -> None:
            closed_after_calls.append(len(qwen.history))
            await super().aclose()

    registries: list[ProviderRegistry] = []

    def make_registry() -> ProviderRegistry:
        registries.append(RecordingRegistry(overrides={"local": provider}))
        return registries[-1]

    monkeypatch.setattr(common, "make_registry", make_registry)
    result = runner.invoke(cli.app, ["chat", "-n", "0"], input="first\nsecond\nthird\n")

    assert result.exit_code == 0, result.output
    assert result.stdout.count("conclave>") == 3
    assert len(registries) == 1
    # closed once, after the last turn (the 1.5B answers twice a turn: at once, then reasoning)
    assert closed_after_calls == [6]


@pytest.mark.embedded
def test_chat_on_the_embedded_models_loads_each_model_once_for_two_turns(
    embedded_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real chat of two turns on SmolLM2 (member and aggregator): loaded once, not per turn."""
    config = tmp_path / "tiny.json"
    config.write_text(
        json.dumps(
            {
                "models": [{"id": "local:smollm2-135m", "max_tokens": 6, "temperature": 0}],
                "aggregator": [
                    {"model": {"id": "local:smollm2-135m", "max_tokens": 6, "temperature": 0}}
                ],
                "iterations": 0,
            }
        )
    )
    loads: list[str] = []
    real_load = LocalProvider._load

    def counting_load(self: LocalProvider, slot: _Model) -> _HookedLlama:
        if slot.llama is None:
            loads.append(slot.pack.name)
        return real_load(self, slot)

    monkeypatch.setattr(LocalProvider, "_load", counting_load)
    settings = Settings(home=tmp_path / "home", threads=2)
    monkeypatch.setattr(common, "make_registry", lambda: ProviderRegistry(settings))
    result = runner.invoke(
        cli.app, ["chat", "--config", str(config)], input="Hello.\nAnd again?\nexit\n"
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.count("conclave>") == 2
    assert loads == ["smollm2-135m"]


def test_unknown_config_file_is_a_clear_error() -> None:
    result = runner.invoke(cli.app, ["ask", "hi", "--config", "/nonexistent/input.json"])
    assert result.exit_code == 1
    assert "/nonexistent/input.json: no such file" in result.stderr


FIXTURES = Path(__file__).parent / "fixtures" / "openrouter"


def openrouter_registry(api_key: str | None) -> ProviderRegistry:
    """A registry whose OpenRouter answers from recorded responses, and whose embedded models
    are fakes (one installed, one not)."""

    def respond(request: httpx2.Request) -> httpx2.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        return httpx2.Response(200, content=(FIXTURES / f"{name}.json").read_bytes())

    class Packs(FakeProvider):
        async def list_models(self) -> list[ModelInfo]:
            return [
                ModelInfo(id="smollm2-135m", provider="local", description="SmolLM2"),
                ModelInfo(id="qwen2.5-1.5b", provider="local", installed=False, description="Q"),
            ]

    openrouter = OpenRouterProvider(
        api_key=api_key, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(respond))
    )
    return ProviderRegistry(overrides={"openrouter": openrouter, "local": Packs({})})


def test_models_lists_packs_and_openrouter_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "make_registry", lambda: openrouter_registry(None))
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(cli.app, ["models"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any("local:smollm2-135m" in line and "yes" in line for line in lines)
    assert any("local:qwen2.5-1.5b" in line and "no" in line for line in lines)
    gpt = next(line for line in lines if "openai/gpt-4o-mini" in line)
    assert "128,000" in gpt
    assert "0.15" in gpt
    assert "0.60" in gpt

    free = runner.invoke(cli.app, ["models", "--free"])
    assert "meta-llama/llama-3.3-70b-instruct:free" in free.stdout
    assert "openai/gpt-4o-mini" not in free.stdout


def test_credits_shows_balance_and_key_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "make_registry", lambda: openrouter_registry("sk-or-test"))
    result = runner.invoke(cli.app, ["credits"])
    assert result.exit_code == 0, result.output
    assert "credits bought: $25.0000" in result.stdout
    assert "credits used:   $7.4214" in result.stdout
    assert "remaining:      $17.5786" in result.stdout
    assert "limit $10.0000" in result.stdout


def test_credits_without_a_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "make_registry", lambda: openrouter_registry(None))
    result = runner.invoke(cli.app, ["credits"])
    assert result.exit_code == 1
    assert "OPENROUTER_API_KEY" in result.stderr
    assert "Traceback" not in result.output
