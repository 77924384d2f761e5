"""`conclave verify`: a receipt from a real (fake-model) run, checked through the command line."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conclave import cli
from conclave.attestation import SimulatedAttester, SimulatedIssuer, issue_receipt
from conclave.attestation.receipt_format import write_receipt_file
from conclave.cli import common
from conclave.config import ConsensusConfig
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.panel import build_panel
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider
from conclave.types import Message

runner = CliRunner()


@pytest.fixture
async def simulated_receipt(tmp_path: Path) -> tuple[Path, SimulatedIssuer]:
    config = ConsensusConfig.model_validate(
        {"models": [{"id": "a"}, {"id": "b"}], "aggregator": [{"model": {"id": "agg"}}]}
    )
    provider = FakeProvider(
        {"a": FakeModel(default="4"), "b": FakeModel(default="four"), "agg": FakeModel(default="4")}
    )
    panel = build_panel(config, ProviderRegistry(overrides={"openrouter": provider}))
    transcript = await ConsensusEngine(config, panel, rng=random.Random(1)).run_to_end(
        [Message(role="user", content="2 + 2?")]
    )
    issuer = SimulatedIssuer(tmp_path / "keys")
    receipt = await issue_receipt(transcript, SimulatedAttester(issuer))
    path = write_receipt_file(tmp_path / "receipt.json", receipt, transcript)
    return path, issuer


def test_verify_accepts_a_simulated_receipt_only_when_allowed(
    simulated_receipt: tuple[Path, SimulatedIssuer],
) -> None:
    path, issuer = simulated_receipt
    args = ["verify", str(path), "--jwks", str(issuer.jwks_path)]

    allowed = runner.invoke(cli.app, [*args, "--allow-simulated"])
    assert allowed.exit_code == 0, allowed.output
    assert "VERIFIED" in allowed.stdout

    refused = runner.invoke(cli.app, args)
    assert refused.exit_code == 1
    assert "simulated" in refused.stdout
    assert "VERIFIED" not in refused.stdout.split("\n")[0]


def test_verify_catches_a_tampered_answer(simulated_receipt: tuple[Path, SimulatedIssuer]) -> None:
    path, issuer = simulated_receipt
    bundle = json.loads(path.read_text())
    bundle["transcript"]["answer"] = "5"
    path.write_text(json.dumps(bundle))
    result = runner.invoke(
        cli.app, ["verify", str(path), "--jwks", str(issuer.jwks_path), "--allow-simulated"]
    )
    assert result.exit_code == 1
    hash_line = next(line for line in result.stdout.splitlines() if "transcript_hash" in line)
    assert "FAIL" in hash_line.upper()


def test_verify_rejects_a_file_that_is_not_a_receipt(tmp_path: Path) -> None:
    path = tmp_path / "not-a-receipt.json"
    path.write_text('{"hello": 1}')
    result = runner.invoke(cli.app, ["verify", str(path), "--allow-unattested"])
    assert result.exit_code == 1
    assert "error:" in result.stderr
    assert "Traceback" not in result.output


def test_ask_writes_a_receipt_that_verify_accepts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    provider = FakeProvider(
        {
            "smollm2-135m": FakeModel(default="4"),
            "qwen2.5-0.5b": FakeModel(default="4"),
            "qwen2.5-1.5b": FakeModel(default="2 + 2 = 4"),
        }
    )
    monkeypatch.setattr(
        common, "make_registry", lambda: ProviderRegistry(overrides={"local": provider})
    )
    monkeypatch.setenv("CONCLAVE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CONCLAVE_ATTESTATION", "simulated")
    receipt = tmp_path / "run.receipt.json"

    asked = runner.invoke(cli.app, ["ask", "2 + 2?", "-n", "0", "--receipt", str(receipt)])
    assert asked.exit_code == 0, asked.output
    assert f"receipt (simulated) written to {receipt}" in asked.stderr
    bundle = json.loads(receipt.read_text())
    assert bundle["transcript"]["answer"] == "2 + 2 = 4"

    jwks = tmp_path / "home" / "simulated-attestation" / "simulated-jwks.json"
    verified = runner.invoke(
        cli.app, ["verify", str(receipt), "--jwks", str(jwks), "--allow-simulated"]
    )
    assert verified.exit_code == 0, verified.output
    assert "VERIFIED" in verified.stdout


def test_verify_of_an_unattested_receipt_names_the_option_that_accepts_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    provider = FakeProvider(
        {name: FakeModel(default="4") for name in ("smollm2-135m", "qwen2.5-1.5b")}
    )
    monkeypatch.setattr(
        common, "make_registry", lambda: ProviderRegistry(overrides={"local": provider})
    )
    monkeypatch.delenv("CONCLAVE_ATTESTATION", raising=False)
    receipt = tmp_path / "run.receipt.json"
    asked = runner.invoke(cli.app, ["ask", "2 + 2?", "-n", "0", "--receipt", str(receipt)])
    assert asked.exit_code == 0, asked.output

    refused = runner.invoke(cli.app, ["verify", str(receipt)])
    assert refused.exit_code == 1
    assert "--allow-unattested" in refused.stdout
    accepted = runner.invoke(cli.app, ["verify", str(receipt), "--allow-unattested"])
    assert accepted.exit_code == 0, accepted.output


@pytest.mark.parametrize("content", [b"garbage{", b"\x00\x01\xff", b"[1, 2]"])
def test_verify_of_a_file_that_is_not_a_receipt_names_the_file(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "mystery.json"
    path.write_bytes(content)
    result = runner.invoke(cli.app, ["verify", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path}: ")
    assert "Traceback" not in result.output
