"""`conclave ask`/`chat` keep their runs; `conclave log` lists, searches, shows and exports
them; `conclave chat --continue` resumes the last conversation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from typer.testing import CliRunner

from conclave import cli
from conclave.providers.testing import FakeModel, FunctionModel
from conclave.types import Message, SamplingOptions

runner = CliRunner()
Fakes = dict[str, FakeModel | FunctionModel]


def invoke(*args: str, input: str | None = None) -> str:
    result = runner.invoke(cli.app, list(args), input=input)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_ask_keeps_the_run_and_log_lists_searches_and_shows_it(fakes: Fakes) -> None:
    invoke("ask", "What is the capital of France?", "-n", "0")
    invoke("ask", "What is the capital of Spain?", "-n", "0")

    listed = invoke("log").splitlines()
    assert len(listed) == 2
    assert "capital of Spain?" in listed[0]  # newest first
    found = invoke("log", "search", "SPAIN").splitlines()  # words in the prompt or answer
    assert len(found) == 1
    assert "capital of Spain?" in found[0]

    run_id = found[0].split()[0]
    shown = invoke("log", "show", run_id)
    assert "## Run " in shown
    assert "### Round 1" in shown
    assert "The capital of France is Paris." in shown
    whole = json.loads(invoke("log", "show", run_id, "--json"))
    assert whole["conversation"][-1]["content"] == "What is the capital of Spain?"


def test_log_exports_json_and_markdown(fakes: Fakes, tmp_path: Path) -> None:
    invoke("ask", "Capital of France?", "-n", "0")
    invoke("ask", "Capital of Spain?", "-n", "0")
    exported = json.loads(invoke("log", "export", "--format", "json"))
    assert [run["conversation"][-1]["content"] for run in exported] == [
        "Capital of Spain?",
        "Capital of France?",
    ]
    target = tmp_path / "runs.md"
    invoke("log", "export", "--format", "markdown", "-q", "spain", "-o", str(target))
    markdown = target.read_text()
    assert markdown.count("## Run ") == 1
    assert "Capital of Spain?" in markdown


def test_chat_continue_resumes_the_last_conversation(fakes: Fakes) -> None:
    seen: list[tuple[Message, ...]] = []

    def remember(messages: Sequence[Message], options: SamplingOptions) -> str:
        seen.append(tuple(messages))
        return f"answer {len(seen)}"

    fakes["qwen2.5-1.5b"] = FunctionModel(remember)
    invoke("chat", "-n", "0", "--strategy", "flare", input="first question\nexit\n")
    resumed = invoke(
        "chat", "-n", "0", "--strategy", "flare", "--continue", input="second question\nexit\n"
    )
    assert "first question" in resumed  # the earlier turns are shown again

    last_turn = next(m for m in reversed(seen) if m[0].role == "user" and len(m) == 3)
    assert [m.role for m in last_turn] == ["user", "assistant", "user"]
    assert [last_turn[0].content, last_turn[2].content] == ["first question", "second question"]
    runs = invoke("log").splitlines()
    assert "turn 2" in runs[0]  # the resumed turn continues the same thread
    first_id = json.loads(invoke("log", "export", runs[1].split()[0]))[0]["id"]
    assert len(invoke("log", "--thread", first_id).splitlines()) == 2


def test_log_errors_are_clear(fakes: Fakes) -> None:
    nothing = runner.invoke(cli.app, ["chat", "--continue"], input="exit\n")
    assert nothing.exit_code == 1
    assert "no conversation is kept yet" in nothing.stderr
    unknown = runner.invoke(cli.app, ["log", "show", "nope"])
    assert unknown.exit_code == 1
    assert "no run 'nope' is kept" in unknown.stderr
    assert "Traceback" not in unknown.output
