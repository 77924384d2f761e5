"""`--ray`: the same batch on a real local Ray cluster (started here on 127.0.0.1), actors each
keeping one `Consensus` whose members are the scripted upstream over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import ray

from batch.process import run_batch
from batch.upstream import scripted_upstream, write_config, write_rows
from conclave.batch import BatchResult, RayOptions, run_consensus_batch
from conclave.config import load_config
from conclave.session import Consensus


def test_the_batch_command_on_ray_writes_what_the_local_run_writes(tmp_path: Path) -> None:
    rows = write_rows(tmp_path / "in.jsonl", 8, failing=frozenset({2}))
    with scripted_upstream() as upstream:
        config = str(write_config(tmp_path / "config.json", upstream.server_port))
        local = run_batch(str(rows), "-c", config, "-o", str(tmp_path / "local.jsonl"), "-q")
        on_ray = run_batch(
            *(str(rows), "-c", config, "-o", str(tmp_path / "ray.jsonl"), "-q"),
            *("--ray", "local", "--actors", "2"),
        )
    assert (local.returncode, on_ray.returncode) == (1, 1), on_ray.stderr  # the one failed row
    assert "1 failed" in on_ray.stderr
    assert results(tmp_path / "ray.jsonl") == results(tmp_path / "local.jsonl")
    assert len(results(tmp_path / "ray.jsonl")) == 8


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


def results(path: Path) -> dict[int, dict[str, object]]:
    """Each row's result by line, without the transcript id (new on every run)."""
    rows = [BatchResult.model_validate_json(line) for line in path.read_text().splitlines()]
    return {row.line: row.model_dump(mode="json", exclude={"transcript_id"}) for row in rows}


@pytest.mark.usefixtures("local_ray")
async def test_ray_actors_give_the_local_run_s_results(tmp_path: Path) -> None:
    rows = write_rows(tmp_path / "in.jsonl", 40, failing=frozenset({5, 31}))
    with scripted_upstream(delay_s=0.01) as upstream:
        factory = partial(
            Consensus, load_config(write_config(tmp_path / "config.json", upstream.server_port))
        )
        local = await run_consensus_batch(rows, tmp_path / "local.jsonl", factory, concurrency=4)
        on_ray = await run_consensus_batch(
            rows,
            tmp_path / "ray.jsonl",
            factory,
            concurrency=4,
            ray=RayOptions(actors=2),
        )
    assert (on_ray.finished, on_ray.failed) == (local.finished, local.failed) == (40, 2)
    assert results(tmp_path / "ray.jsonl") == results(tmp_path / "local.jsonl")
    for line in (1, 40):
        assert results(tmp_path / "ray.jsonl")[line]["answer"] == f"answer for Q-{line - 1}"
    assert results(tmp_path / "ray.jsonl")[6]["answer"] is None


@pytest.mark.usefixtures("local_ray")
async def test_a_ray_run_resumes_from_the_local_one_s_output(tmp_path: Path) -> None:
    rows = write_rows(tmp_path / "in.jsonl", 12)
    out = tmp_path / "out.jsonl"
    lines = rows.read_text().splitlines()
    with scripted_upstream() as upstream:
        factory = partial(
            Consensus, load_config(write_config(tmp_path / "config.json", upstream.server_port))
        )
        half = tmp_path / "half.jsonl"
        half.write_text("\n".join(lines[:5]) + "\n")
        await run_consensus_batch(half, out, factory, concurrency=2)
        calls_before = upstream.calls
        summary = await run_consensus_batch(
            rows, out, factory, concurrency=2, ray=RayOptions(actors=2)
        )
        calls_on_ray = upstream.calls - calls_before
    assert (summary.skipped, summary.finished) == (5, 7)
    assert calls_on_ray == 7 * 3  # two members and the aggregator, for the 7 new rows only
    assert sorted(results(out)) == list(range(1, 13))
