"""`conclave eval` end to end on the real embedded models: the report's structure, never the
models' accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conclave import cli
from conclave.cli import common
from conclave.config import AggregatorSpec, ConsensusConfig, ModelSpec
from conclave.providers.local import LocalProvider
from conclave.providers.registry import ProviderRegistry

pytestmark = pytest.mark.embedded

ROWS = [
    {
        "id": "gas",
        "question": "Which of these is a noble gas?",
        "choices": ["Iron", "Neon", "Salt"],
        "answers": ["B"],
    },
    {"id": "sum", "question": "What is 17 + 25?", "answers": ["42"]},
    {"id": "peru", "question": "What is the capital of Peru?", "answers": ["Lima"]},
]


def _config(path: Path) -> Path:
    def spec(pack: str) -> ModelSpec:
        return ModelSpec(id=f"local:{pack}", max_tokens=8, temperature=0.0)

    config = ConsensusConfig(
        name="tiny",
        models=(spec("smollm2-135m"), spec("qwen2.5-0.5b")),
        aggregator=(AggregatorSpec(model=spec("qwen2.5-0.5b")),),
        iterations=0,
        timeout_s=600,
    )
    path.write_text(config.model_dump_json())
    return path


def test_eval_on_the_embedded_models_writes_a_complete_report(
    tmp_path: Path, local_provider: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        common, "make_registry", lambda: ProviderRegistry(overrides={"local": local_provider})
    )
    data = tmp_path / "tiny.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    out_dir = tmp_path / "out"
    args = ["eval", str(data), "-c", str(_config(tmp_path / "tiny.json")), "-o", str(out_dir)]
    result = CliRunner().invoke(cli.app, [*args, "-q"])
    assert result.exit_code == 0, result.output

    report = json.loads((out_dir / "report.json").read_text())
    setups = ["local:smollm2-135m", "local:qwen2.5-0.5b", "flare"]
    assert report["setups"] == setups
    assert report["best_member"]["tiny"] in setups[:2]
    for score in report["scores"]:
        assert score["rows"] == 3
        assert score["errors"] == 0
        assert 0.0 <= score["ci_low"] <= score["accuracy"] <= score["ci_high"] <= 1.0
        assert score["tokens_per_question"] > 0
        assert score["model_s_per_question"] > 0
        is_best = score["setup"] == report["best_member"]["tiny"]
        assert (score["vs_best_member"] is None) == is_best
    weights = json.loads((out_dir / "weights.json").read_text())["members"]
    assert [w["model"] for w in weights] == setups[:2]
    assert "<svg" in (out_dir / "report.html").read_text()

    results = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    assert len(results) == 9
    consensus = [r for r in results if r["setup"] == "flare"]
    # each member's round-0 call is the one it made alone: served by the call cache
    assert [r["cached_calls"] for r in consensus] == [2, 2, 2]

    again = CliRunner().invoke(cli.app, [*args, "-q"])
    assert again.exit_code == 0, again.output
    assert len((out_dir / "results.jsonl").read_text().splitlines()) == 9
