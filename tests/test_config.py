"""Config loading: Flare's input.json unchanged, conclave's superset, precise errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conclave.config import ConsensusConfig, ModelSpec, load_config, parse_config
from conclave.errors import ConfigError

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_flare_input_json_loads_unchanged() -> None:
    config = load_config(EXAMPLES / "flare_input.json")
    assert [m.id for m in config.models] == [
        "meta-llama/llama-3.2-3b-instruct:free",
        "google/gemma-3-4b-it:free",
        "mistralai/mistral-small-3.1-24b-instruct:free",
    ]
    assert all(m.provider == "openrouter" for m in config.models)
    assert config.models[0].sampling.max_tokens == 200
    assert config.models[0].sampling.temperature == 0.7
    aggregator = config.aggregator_spec
    assert aggregator.model.id == "meta-llama/llama-3.2-3b-instruct:free"
    assert aggregator.aggregator_context[0].role == "system"
    assert aggregator.aggregator_prompt[0].role == "user"
    assert aggregator.approach == "centralized-llm"
    assert config.aggregated_prompt_type == "system"
    assert config.improvement_prompt.startswith("Please provide an answer")
    assert config.iterations == 2
    assert [m.role for m in config.initial_conversation] == ["system", "user"]


def test_conclave_superset_says_where_each_model_lives() -> None:
    config = load_config(EXAMPLES / "mixed_panel.json")
    local, routed, own = config.models
    assert (local.provider, local.model_name) == ("local", "qwen2.5-0.5b")
    assert (routed.provider, routed.model_name) == (
        "openrouter",
        "meta-llama/llama-3.3-70b-instruct",
    )
    assert (own.provider, own.model_name) == ("openai", "qwen2.5-0.5b-instruct")
    assert own.api_key_env == "MY_SERVER_KEY"
    assert own.display_name == "my server"
    assert (config.quorum, config.timeout_s, config.budget_usd) == (2, 90, 0.05)


def test_a_base_url_keeps_a_prefixed_looking_id_as_is() -> None:
    spec = ModelSpec(id="local:thing", base_url="http://127.0.0.1:9/v1")
    assert spec.provider == "openai"
    assert spec.model_name == "local:thing"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"iterations": -1}, "$.iterations: Input should be greater than or equal to 0 (found -1)"),
        (
            {"aggregated_prompt_type": "tool"},
            "$.aggregated_prompt_type: Input should be 'system', 'user' or 'assistant' "
            '(found "tool")',
        ),
        (
            {"models": []},
            "$.models: at least one model is needed (found [])",
        ),
        ({"quorum": 9}, "quorum is 9 but only 1 models are configured; set quorum to at most 1"),
        (
            {"itrations": 2},
            "$.itrations: Extra inputs are not permitted "
            "(this field is not known; check its spelling)",
        ),
    ],
)  # fmt: skip
def test_invalid_configs_name_the_field_what_was_found_and_what_is_expected(
    change: dict[str, object], expected: str
) -> None:
    data: dict[str, object] = {
        "models": [{"id": "a"}],
        "aggregator": [{"model": {"id": "b"}}],
    }
    data.update(change)
    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="input.json")
    assert expected in str(caught.value)
    assert str(caught.value).startswith("input.json: ")


def test_errors_deep_in_the_file_carry_their_json_path() -> None:
    data = json.loads((EXAMPLES / "flare_input.json").read_text())
    data["models"][1]["temperature"] = 5
    del data["aggregator"][0]["model"]["id"]
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    message = str(caught.value)
    assert "2 problem(s)" in message
    assert "$.models[1].temperature: Input should be less than or equal to 2 (found 5)" in message
    assert "$.aggregator[0].model.id: Field required (found nothing)" in message


def test_unreadable_and_malformed_files_are_reported_plainly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"models": [,]}')
    with pytest.raises(ConfigError, match="not valid JSON at line 1, column 13"):
        load_config(broken)


def test_base_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match=r"\$.models\[0\].base_url: must start with http"):
        parse_config(
            {"models": [{"id": "m", "base_url": "ftp://x"}], "aggregator": [{"model": {"id": "b"}}]}
        )


def test_with_changes_revalidates() -> None:
    config = ConsensusConfig.model_validate(
        {"models": [{"id": "a"}], "aggregator": [{"model": {"id": "b"}}]}
    )
    assert config.with_changes(iterations=4).iterations == 4
    with pytest.raises(ConfigError, match="iterations"):
        config.with_changes(iterations=-2)
