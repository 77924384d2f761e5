"""`conclave mcp` as an MCP client meets it: a process of its own, reached with the official
SDK's client over stdio (the client starts it) and over streamable HTTP (with the API key;
401 without), its panel a scripted OpenAI-compatible upstream on 127.0.0.1, or the real
embedded models."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import httpx2
import pytest
from mcp import Client, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from batch.upstream import scripted_upstream, write_config

SRC = Path(__file__).resolve().parents[1] / "src"
API_KEY = "mcp-transport-key-0123456789"
START_TIMEOUT_S = 60.0


def environment(**extra: str) -> dict[str, str]:
    """This process's environment (its run store included), with this checkout's code first
    and nothing that would open the HTTP transport or give it keys unless asked."""
    env = {k: v for k, v in os.environ.items() if k not in ("CONCLAVE_API_KEYS",)}
    env.pop("CONCLAVE_ALLOW_UNAUTHENTICATED", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    return {**env, **extra}


def conclave_mcp(*args: str) -> list[str]:
    return [sys.executable, "-m", "conclave.cli", "mcp", *args]


def run_to_end(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`conclave mcp ARGS` with nothing on stdin, for a start that must fail."""
    return subprocess.run(
        conclave_mcp(*args),
        env=environment(),
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=START_TIMEOUT_S,
    )


def answer_of(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


# --- stdio ------------------------------------------------------------------------------------


async def test_a_stdio_session_lists_the_tools_and_gets_a_consensus(tmp_path: Path) -> None:
    errors = tmp_path / "stderr.txt"
    with scripted_upstream() as upstream:
        config = write_config(tmp_path / "scripted.json", upstream.server_port, members=3)
        server = StdioServerParameters(
            command=sys.executable,
            args=["-m", "conclave.cli", "mcp", "--config", str(config)],
            env=environment(),
            cwd=tmp_path,
        )
        with errors.open("w", encoding="utf-8") as errlog:
            async with Client(stdio_client(server, errlog=errlog)) as client:
                tools = {tool.name for tool in (await client.list_tools()).tools}
                asked = answer_of(await client.call_tool("ask", {"prompt": "Question Q-7?"}))
                run = answer_of(await client.call_tool("get_run", {"run_id": asked["run_id"]}))

    assert tools == {"ask", "list_presets", "list_models", "get_run"}
    assert asked["answer"] == "answer for Q-7"
    assert (asked["preset"], asked["calls"], asked["failed_calls"]) == ("scripted", 4, 0)
    assert asked["agreement"] == 1.0
    assert [call["model"] for call in run["rounds"][0]["responses"]] == [
        "scripted-0",
        "scripted-1",
        "scripted-2",
    ]
    assert "Traceback" not in errors.read_text(encoding="utf-8")


def test_a_bad_config_stops_the_stdio_server_with_its_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text('{"models": []}', encoding="utf-8")

    done = run_to_end(tmp_path, "--config", str(config))

    assert done.returncode == 1
    assert "bad.json" in done.stderr
    assert "$.models" in done.stderr
    assert done.stdout == ""  # nothing on the protocol's channel
    assert "Traceback" not in done.stderr


# --- streamable HTTP --------------------------------------------------------------------------


class HttpServer:
    """`conclave mcp --http` on a free port of 127.0.0.1, its log in a file."""

    def __init__(self, process: subprocess.Popen[str], log: Path, url: str) -> None:
        self.process = process
        self.log = log
        self.url = url


@contextmanager
def start_http(config: Path, tmp_path: Path, **env: str) -> Iterator[HttpServer]:
    log = tmp_path / "mcp-http.log"
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            conclave_mcp("--http", "--port", "0", "--config", str(config)),
            env=environment(**env),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield HttpServer(process, log, _wait_for_url(process, log))
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_for_url(process: subprocess.Popen[str], log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = re.search(r"running on (http://127\.0\.0\.1:\d+)", log.read_text("utf-8"))
        if found:
            return found.group(1) + "/mcp"
        if process.poll() is not None:
            pytest.fail(f"conclave mcp --http stopped: {log.read_text('utf-8')}")
        time.sleep(0.1)
    pytest.fail(f"conclave mcp --http did not start: {log.read_text('utf-8')}")


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    with scripted_upstream() as upstream:
        config = write_config(tmp_path / "scripted.json", upstream.server_port, members=2)
        with start_http(config, tmp_path, CONCLAVE_API_KEYS=API_KEY) as server:
            yield server


async def test_an_http_session_with_the_key_gets_a_consensus(http_server: HttpServer) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(http_server.url, http_client=http)) as client,
    ):
        tools = {tool.name for tool in (await client.list_tools()).tools}
        asked = answer_of(await client.call_tool("ask", {"prompt": "Question Q-3?"}))
        refused = await client.call_tool("ask", {"prompt": "Q-4?", "config": "/etc/passwd"})

    assert tools == {"ask", "list_presets", "list_models", "get_run"}
    assert asked["answer"] == "answer for Q-3"
    assert asked["kept"] is True
    assert refused.is_error
    assert API_KEY not in http_server.log.read_text("utf-8")


async def test_without_keys_a_caller_on_this_machine_needs_none(tmp_path: Path) -> None:
    with scripted_upstream() as upstream:
        config = write_config(tmp_path / "scripted.json", upstream.server_port, members=2)
        with start_http(config, tmp_path) as server:
            async with Client(server.url) as client:
                presets = answer_of(await client.call_tool("list_presets", {}))

    assert [preset["name"] for preset in presets["presets"]] == ["scripted"]


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key-0123456789"])
def test_http_without_the_key_is_401(http_server: HttpServer, authorization: str | None) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "probe", "version": "0"},
        },
    }
    headers = {"Accept": "application/json, text/event-stream"}
    if authorization:
        headers["Authorization"] = authorization

    response = httpx2.post(http_server.url, json=initialize, headers=headers, timeout=30)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer <key>" in response.json()["error"]["message"]


def test_http_beyond_loopback_without_keys_is_refused(tmp_path: Path) -> None:
    done = run_to_end(tmp_path, "--http", "--host", "0.0.0.0", "--port", "0")

    assert done.returncode == 1
    assert "refusing to serve" in done.stderr
    assert "CONCLAVE_API_KEYS" in done.stderr
    assert "Traceback" not in done.stderr


# --- the real embedded models -----------------------------------------------------------------


@pytest.mark.embedded
async def test_conclave_mcp_with_no_config_answers_on_the_embedded_models(
    models_dir: Path, embedded_models: dict[str, Path], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(models_dir, target_is_directory=True)
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "conclave.cli", "mcp"],
        env=environment(CONCLAVE_HOME=str(home), CONCLAVE_THREADS="2"),
        cwd=tmp_path,
    )
    errlog: TextIO
    with (tmp_path / "stderr.txt").open("w", encoding="utf-8") as errlog:
        async with Client(stdio_client(server, errlog=errlog), read_timeout_seconds=600) as client:
            presets = answer_of(await client.call_tool("list_presets", {}))
            asked = answer_of(
                await client.call_tool(
                    "ask", {"prompt": "What is the capital of France? Answer in one word."}
                )
            )

    assert [preset["name"] for preset in presets["presets"]] == ["embedded"]
    assert asked["answer"].strip()
    assert asked["preset"] == "embedded"
    assert asked["calls"] >= 1
    assert 0.0 <= asked["confidence"] <= 1.0
