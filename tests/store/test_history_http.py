"""Runs made over HTTP are kept in the shared store: listed and filtered by
`GET /v1/transcripts`, served by any worker, still there after a restart (for the API and for
`conclave log`), with their receipts issued once and kept."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from conclave import cli
from conclave.errors import ProviderHTTPError
from conclave.providers.testing import FakeModel
from conclave.server import MemoryTranscriptStore
from server.conftest import ServeFactory, default_fakes, make_config
from server.test_ops_and_cli import conclave_serve, upstream_config

CHAT = {"model": "default", "messages": [{"role": "user", "content": "Capital of France?"}]}


def ask(base: str, content: str = "Capital of France?", model: str = "default") -> str:
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    response = httpx2.post(base + "/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.headers["x-conclave-transcript-id"]


def test_a_run_over_http_survives_a_restart_for_the_api_and_conclave_log(
    serve: ServeFactory,
) -> None:
    fakes = default_fakes()
    fakes["b"] = FakeModel(default=ProviderHTTPError("b: HTTP 503 upstream down", status_code=503))
    first = serve(fakes=fakes)
    run_id = ask(first.url)
    receipt_before = httpx2.get(f"{first.v1}/transcripts/{run_id}/receipt").json()
    first.stop()  # the same database, a new server

    second = serve()
    listed = httpx2.get(second.v1 + "/transcripts").json()
    assert [run["id"] for run in listed["runs"]] == [run_id]
    assert listed["runs"][0]["failed_calls"] == 2  # b failed in both rounds
    transcript = httpx2.get(f"{second.v1}/transcripts/{run_id}").json()
    assert transcript["answer"] == "The capital of France is Paris."
    failed = [r for r in transcript["rounds"][0]["responses"] if r["error"]]
    assert [r["model"] for r in failed] == ["b"]
    assert httpx2.get(f"{second.v1}/transcripts/{run_id}/receipt").json() == receipt_before

    logged = CliRunner().invoke(cli.app, ["log"])
    assert logged.exit_code == 0, logged.output
    assert run_id[:12] in logged.stdout
    assert "Capital of France?" in logged.stdout
    shown = CliRunner().invoke(cli.app, ["log", "show", run_id[:8]])
    assert shown.exit_code == 0, shown.output
    assert "The capital of France is Paris." in shown.stdout
    assert "FAILED (http_error)" in shown.stdout


def test_the_history_is_paged_and_filtered(serve: ServeFactory) -> None:
    served = serve(configs=[make_config(name="panel"), make_config(name="other", iterations=0)])
    france = ask(served.url, "Capital of France?")
    spain = ask(served.url, "Capital of Spain?", model="other")
    v1 = served.v1

    def ids(**params: str | int) -> list[str]:
        response = httpx2.get(v1 + "/transcripts", params=params)
        assert response.status_code == 200, response.text
        return [run["id"] for run in response.json()["runs"]]

    assert ids() == [spain, france]
    assert ids(preset="other") == [spain]
    assert ids(q="spain") == [spain]
    assert ids(limit=1) == [spain]
    assert ids(limit=1, offset=1) == [france]
    page = httpx2.get(v1 + "/transcripts", params={"limit": 1}).json()
    assert (page["total"], page["more"]) == (2, True)
    assert ids(since="2999-01-01T00:00:00Z") == []

    bad = httpx2.get(v1 + "/transcripts", params={"limit": 0})
    assert bad.status_code == 400
    assert "limit" in bad.json()["error"]["message"]
    not_a_date = httpx2.get(v1 + "/transcripts", params={"since": "0.5"})
    assert not_a_date.status_code == 400
    assert "2026-11-27" in not_a_date.json()["error"]["message"]


def test_the_receipt_verification_checks_the_kept_transcript(serve: ServeFactory) -> None:
    served = serve()
    run_id = ask(served.url)
    report = httpx2.get(f"{served.v1}/transcripts/{run_id}/verification").json()
    checks = {check["name"]: check["status"] for check in report["checks"]}
    assert checks["transcript_hash"] == "passed"
    assert report["verified"] is True
    missing = httpx2.get(f"{served.v1}/transcripts/nope/verification")
    assert missing.status_code == 404


def test_with_two_workers_any_worker_serves_any_transcript(
    serve: ServeFactory, tmp_path: Path
) -> None:
    upstream = serve(fakes=default_fakes(), configs=[make_config(iterations=0)])
    quick = upstream_config(tmp_path / "quick.json", "quick", upstream.v1, iterations=0)
    with conclave_serve("--config", str(quick), "--workers", "2", env={}) as (base, _):
        made = [ask(base, f"Question {n}?") for n in range(8)]
        for run_id in made:
            for _ in range(4):  # a new connection each time, so that both workers answer
                response = httpx2.get(f"{base}/v1/transcripts/{run_id}")
                assert response.status_code == 200, response.text
        listed = httpx2.get(base + "/v1/transcripts", params={"preset": "quick"}).json()
        assert sorted(run["id"] for run in listed["runs"]) == sorted(made)


def test_with_the_store_disabled_this_process_lists_its_runs_from_memory(
    serve: ServeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONCLAVE_STORE_ENABLED", "false")
    served = serve()
    run_id = ask(served.url, "Capital of Spain?")
    assert isinstance(served.app.state.service.store, MemoryTranscriptStore)
    listed = httpx2.get(served.v1 + "/transcripts", params={"q": "spain"}).json()
    assert [run["id"] for run in listed["runs"]] == [run_id]
    assert httpx2.get(served.v1 + "/transcripts", params={"q": "germany"}).json()["total"] == 0


def test_serve_with_a_store_it_cannot_open_stops_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONCLAVE_STORE_URL", "postgresql://nobody:hunter2@127.0.0.1:1/runs")
    for workers in ("1", "2"):
        result = CliRunner().invoke(cli.app, ["serve", "--port", "1", "--workers", workers])
        assert result.exit_code == 1
        assert "cannot open the run store at postgresql" in result.stderr
        assert "hunter2" not in result.output  # the URL's password is never shown
        assert "Traceback" not in result.output
