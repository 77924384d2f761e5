"""Bad input on the command line: config files that are not UTF-8 JSON, unknown embedded
models, blank prompts and bytes that are not UTF-8 each get one clear line, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conclave import cli

runner = CliRunner()


def a_config(models: list[str]) -> dict[str, object]:
    return {
        "models": [{"id": model} for model in models],
        "aggregator": [{"model": {"id": models[0]}}],
        "iterations": 0,
    }


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (json.dumps(a_config(["a", "b"])).encode("utf-16"), "UTF-16"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00", "binary"),
        ('{"models": [{"id": "caf\u00e9"}]}'.encode("latin-1"), "not UTF-8"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [["config", "check"], ["ask", "Hi?", "--config"], ["serve", "--host", "127.0.0.1", "--config"]],
)
def test_a_config_that_is_not_utf8_is_one_clear_error(
    tmp_path: Path, content: bytes, expected: str, command: list[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    result = runner.invoke(cli.app, [*command, str(path)])
    assert result.exit_code == 1
    assert expected in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_utf8_config_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(a_config(["a", "b"])).encode())
    result = runner.invoke(cli.app, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output


def test_config_check_refuses_an_unknown_embedded_model(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(a_config(["local:nonexistent", "a"])))
    result = runner.invoke(cli.app, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert "nonexistent" in result.output
    assert "smollm2-135m" in result.output  # the known packs are named


def test_serve_refuses_an_unknown_embedded_model_before_listening(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(a_config(["local:nonexistent", "a"])))
    result = runner.invoke(cli.app, ["serve", "--config", str(path), "--host", "127.0.0.1"])
    assert result.exit_code == 1
    assert "unknown embedded model 'nonexistent'" in result.output


@pytest.mark.parametrize("prompt", ["", "  \n "])
def test_a_blank_prompt_is_refused_before_any_model_runs(prompt: str) -> None:
    result = runner.invoke(cli.app, ["ask", prompt])
    assert result.exit_code == 1
    assert "the prompt is empty" in result.output


def test_a_prompt_that_is_not_utf8_is_one_clear_error() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "LC_ALL": "C.UTF-8"}
    done = subprocess.run(
        [sys.executable, "-m", "conclave.cli", "ask", b"caf\xe9 ?"],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert b"not valid UTF-8: byte 0xe9" in done.stderr
    assert b"Traceback" not in done.stderr
