"""Health, Prometheus metrics (one registry per app), the OpenAPI page, and `conclave serve`:
a bad config stops the start cleanly; a good one serves through the real OpenAI-compatible
provider (the upstream here is another conclave server with fake members)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from typer.testing import CliRunner

from conclave import cli
from conclave.errors import ProviderHTTPError
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider
from conclave.server import ServerSettings, create_app

from .conftest import Served, ServeFactory, default_fakes, make_config

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Capital of France?"}]
CHAT = {"model": "default", "messages": MESSAGES}


def metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric line starting with {line_start}")


def test_health(served: Served) -> None:
    assert httpx2.get(served.url + "/health").json() == {
        "status": "ok",
        "presets": ["default", "panel"],
        "runs_in_flight": 0,
        "breakers": {"panel": {"members": [], "aggregator": None, "fallback_aggregator": None}},
    }


def test_metrics_count_requests_failures_and_tokens(serve: ServeFactory) -> None:
    fakes = default_fakes()
    fakes["b"] = FakeModel(default=ProviderHTTPError("b: HTTP 429", status_code=429))
    served = serve(fakes=fakes)
    for _ in range(2):
        assert httpx2.post(served.v1 + "/chat/completions", json=CHAT).status_code == 200
    httpx2.post(served.v1 + "/chat/completions", json={**CHAT, "model": "nope"})

    text = httpx2.get(served.url + "/metrics").text
    assert (
        metric(
            text,
            'conclave_http_requests_total{method="POST",route="/v1/chat/completions",status="200"}',
        )
        == 2
    )
    assert (
        metric(
            text,
            'conclave_http_requests_total{method="POST",route="/v1/chat/completions",status="404"}',
        )
        == 1
    )
    assert metric(text, 'conclave_consensus_runs_total{outcome="ok",preset="panel"}') == 2
    assert (
        metric(
            text,
            'conclave_model_call_failures_total{model="b",preset="panel",role="member",type="http_error"}',
        )
        == 3
    )
    # After 3 failures in a row b rests: its 4th turn is skipped, and /metrics says so.
    assert (
        metric(
            text,
            'conclave_model_call_failures_total{model="b",preset="panel",role="member",type="cooldown"}',
        )
        == 1
    )
    assert metric(text, 'conclave_member_resting{member="b",preset="panel"}') == 1
    assert metric(text, 'conclave_member_resting{member="a",preset="panel"}') == 0
    assert (
        metric(text, 'conclave_tokens_total{kind="completion",model="a",preset="panel"}') == 4
    )  # "Paris." is one word, twice per run
    assert 'conclave_http_request_duration_seconds_bucket{le="0.5",method="POST"' in text
    assert metric(text, "conclave_consensus_runs_in_flight") == 0


def test_each_app_has_its_own_metrics() -> None:
    def app_requests() -> tuple[object, object]:
        registry = ProviderRegistry(overrides={"openrouter": FakeProvider(default_fakes())})
        settings = ServerSettings(_env_file=None)
        app = create_app([("panel", make_config())], settings=settings, registry=registry)
        return app, app.state.service.metrics

    _, first = app_requests()
    _, second = app_requests()
    first.runs_rejected.inc()  # type: ignore[attr-defined]
    assert first.registry is not second.registry  # type: ignore[attr-defined]
    assert b"conclave_consensus_runs_rejected_total 1.0" in first.render()  # type: ignore[attr-defined]
    assert b"conclave_consensus_runs_rejected_total 0.0" in second.render()  # type: ignore[attr-defined]


def test_docs_and_openapi_describe_the_routes(served: Served) -> None:
    paths = httpx2.get(served.url + "/openapi.json").json()["paths"]
    assert {"/v1/chat/completions", "/v1/models", "/api/routes/chat/", "/v1/consensus/stream"} <= (
        paths.keys()
    )


def test_unknown_transcript_is_a_404(served: Served) -> None:
    response = httpx2.get(served.v1 + "/transcripts/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- conclave serve -----------------------------------------------------------------------------


def test_serve_with_a_bad_config_stops_with_the_config_check_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": [{"id": "a", "temperature": 9}], "aggregator": []}))
    runner = CliRunner()
    served = runner.invoke(cli.app, ["serve", "--config", str(bad)])
    checked = runner.invoke(cli.app, ["config", "check", str(bad)])
    assert served.exit_code == checked.exit_code == 1
    assert "$.models[0].temperature" in served.output
    assert served.output == checked.output
    assert "Traceback" not in served.output


def test_serve_without_a_key_for_openrouter_stops_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    config = tmp_path / "flare.json"
    config.write_text((Path(__file__).parents[2] / "examples" / "flare_input.json").read_text())
    result = CliRunner().invoke(cli.app, ["serve", "--config", str(config)])
    assert result.exit_code == 1
    assert "OPENROUTER_API_KEY" in result.output
    assert "Traceback" not in result.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def upstream_config(path: Path, name: str, url: str, iterations: int) -> Path:
    """A preset whose members and aggregator are another server's `panel` preset."""
    path.write_text(
        json.dumps(
            {
                "name": name,
                "models": [{"id": "panel", "base_url": url, "label": f"up{i}"} for i in (1, 2)],
                "aggregator": [{"model": {"id": "panel", "base_url": url}}],
                "iterations": iterations,
            }
        )
    )
    return path


@contextmanager
def conclave_serve(*args: str, env: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """`conclave serve ARGS` in a subprocess on a free port; yields its URL and, once it has
    stopped (SIGTERM, as a container runtime stops it), its output lines."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "conclave.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port), *args],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120  # generous: a busy 2-core machine starts slowly
        while True:
            try:
                if httpx2.get(base + "/health").status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert process.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "serve did not start in time"
            time.sleep(0.1)
        yield base, output
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=30)
        output.extend(stdout.decode().splitlines())
    # uvicorn shuts down gracefully, then re-raises SIGTERM to exit as the signal asks.
    assert process.returncode in (0, -signal.SIGTERM)


def test_conclave_serve_end_to_end_through_the_real_openai_provider(
    serve: ServeFactory, tmp_path: Path
) -> None:
    upstream = serve(fakes=default_fakes(), configs=[make_config(iterations=0)])
    front = upstream_config(tmp_path / "front.json", "front", upstream.v1, iterations=1)
    quick = upstream_config(tmp_path / "quick.json", "quick", upstream.v1, iterations=0)
    key = "ck-e2e-key-000000"
    with (
        conclave_serve(
            "--config", str(front), "--config", str(quick), env={"CONCLAVE_API_KEYS": key}
        ) as (base, log),
        openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0) as api,
    ):
        assert [m.id for m in api.models.list().data] == ["default", "front", "quick"]
        answer = api.chat.completions.create(model="quick", messages=MESSAGES)
        assert answer.choices[0].message.content == "The capital of France is Paris."
        streamed = api.chat.completions.create(
            model="default",
            messages=MESSAGES,
            stream=True,
        )
        assert "".join(c.choices[0].delta.content or "" for c in streamed) == (
            "The capital of France is Paris."
        )
        flare = httpx2.post(
            base + "/api/routes/chat/",
            json={"system_message": "Be brief.", "user_message": "Capital of France?"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert flare.json()["response"] == "The capital of France is Paris."
        # 2 members + aggregator per round: `quick` 1 round, `front` (default) 2 rounds, twice.
        upstream_runs = httpx2.get(upstream.url + "/metrics").text
        assert metric(upstream_runs, 'conclave_consensus_runs_total{outcome="ok"') == 15
    text = "\n".join(log)
    assert "Application shutdown complete" in text
    assert key not in text
    assert "Traceback" not in text


def test_conclave_serve_with_two_workers_sums_their_metrics(
    serve: ServeFactory, tmp_path: Path
) -> None:
    upstream = serve(fakes=default_fakes(), configs=[make_config(iterations=0)])
    quick = upstream_config(tmp_path / "quick.json", "quick", upstream.v1, iterations=0)
    with conclave_serve("--config", str(quick), "--workers", "2", env={}) as (base, log):
        for _ in range(10):
            # a new connection each time, so that both workers take some
            with httpx2.Client() as http:
                assert http.post(base + "/v1/chat/completions", json=CHAT).status_code == 200
        route = 'conclave_http_requests_total{method="POST",route="/v1/chat/completions"'
        for _ in range(5):  # whichever worker answers the scrape, it reports every worker's
            text = httpx2.get(base + "/metrics").text
            assert metric(text, route) == 10
            assert metric(text, 'conclave_consensus_runs_total{outcome="ok",preset="quick"}') == 10
    assert sum("Started server process" in line for line in log) == 2
