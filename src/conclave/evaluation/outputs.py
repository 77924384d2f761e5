"""The files an evaluation leaves: report.json, report.html, weights.json, and each config
with its members' measured accuracy as their `weight` (once the config has that field)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from conclave.config import ConsensusConfig, ModelSpec
from conclave.evaluation.render import report_html
from conclave.evaluation.report import Report
from conclave.evaluation.setups import Setup

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
WEIGHTS_JSON = "weights.json"
MIN_WEIGHT = 0.01
"""A member that got nothing right still gets a small positive weight: weights divide."""


def write_outputs(
    report: Report,
    out_dir: Path,
    setups: Sequence[Setup],
    configs: Sequence[tuple[str, ConsensusConfig]],
) -> list[Path]:
    """Write the report files; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / REPORT_JSON, out_dir / REPORT_HTML, out_dir / WEIGHTS_JSON]
    written[0].write_text(report.model_dump_json(indent=2), encoding="utf-8")
    written[1].write_text(report_html(report), encoding="utf-8")
    weights = [w.model_dump(mode="json") for w in report.member_weights]
    written[2].write_text(json.dumps({"members": weights}, indent=2) + "\n", encoding="utf-8")
    if "weight" in ModelSpec.model_fields:
        accuracy = _accuracy_by_spec(report, setups)
        for name, config in configs:
            path = out_dir / f"{name}.weighted.json"
            path.write_text(_weighted(config, accuracy).model_dump_json(indent=2), "utf-8")
            written.append(path)
    return written


def _accuracy_by_spec(report: Report, setups: Sequence[Setup]) -> dict[str, float]:
    by_setup = {w.setup: w.accuracy for w in report.member_weights}
    return {
        setup.member.model_dump_json(): by_setup[setup.name]
        for setup in setups
        if setup.member is not None and setup.name in by_setup
    }


def _weighted(config: ConsensusConfig, accuracy: dict[str, float]) -> ConsensusConfig:
    models = [
        {
            **spec.model_dump(mode="json"),
            "weight": max(MIN_WEIGHT, accuracy[spec.model_dump_json()]),
        }
        if spec.model_dump_json() in accuracy
        else spec.model_dump(mode="json")
        for spec in config.models
    ]
    return config.with_changes(models=models)
