"""`conclave batch` as a user runs it: a real process, real HTTP members (the scripted upstream
on 127.0.0.1), killed with SIGKILL halfway and started again."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from batch.process import WAIT_S, complete_lines, conclave, environment, run_batch
from batch.upstream import scripted_upstream, write_config, write_rows
from conclave.store import StoreSettings, open_run_store


def test_200_rows_each_out_exactly_once_after_a_kill_and_a_restart(tmp_path: Path) -> None:
    rows = write_rows(tmp_path / "in.jsonl", 200)
    out = tmp_path / "out.jsonl"
    with scripted_upstream(delay_s=0.02) as upstream:
        config = write_config(tmp_path / "config.json", upstream.server_port)
        args = (str(rows), "--config", str(config), "--out", str(out), "-j", "4")
        first = subprocess.Popen(
            conclave("batch", *args), env=environment(), stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + WAIT_S
        while len(complete_lines(out)) < 60 and first.poll() is None:
            assert time.monotonic() < deadline, "the batch wrote too few rows in time"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert first.returncode == -signal.SIGKILL
        done_before = len(complete_lines(out))
        assert 60 <= done_before < 200, "the kill must come halfway"

        second = run_batch(*args)

    assert second.returncode == 0, second.stderr
    assert f"{done_before} already done" in second.stderr
    results = complete_lines(out)
    assert out.read_text(encoding="utf-8").endswith("\n")
    counts = Counter(result.line for result in results)
    assert sorted(counts) == list(range(1, 201))
    assert set(counts.values()) == {1}
    for result in results:
        assert result.error is None
        assert result.answer == f"answer for Q-{result.fields['id']}"


def test_failed_rows_are_written_with_their_error_and_the_exit_code_says_so(
    tmp_path: Path,
) -> None:
    rows = write_rows(tmp_path / "in.jsonl", 6, failing=frozenset({4}))
    out = tmp_path / "out.jsonl"
    with scripted_upstream() as upstream:
        config = write_config(tmp_path / "config.json", upstream.server_port)
        run = run_batch(str(rows), "-c", str(config), "-o", str(out), "-q")
    assert run.returncode == 1
    assert "1 failed" in run.stderr
    by_line = {result.line: result for result in complete_lines(out)}
    assert sorted(by_line) == [1, 2, 3, 4, 5, 6]
    assert [line for line, result in by_line.items() if not result.ok] == [5]
    failed = by_line[5]
    assert failed.answer is None
    assert failed.error is not None
    assert failed.error.type == "ConsensusError"
    assert "HTTP 400" in failed.error.message
    # every row's transcript, the failed one's included, is kept in the run store
    store = open_run_store(home=tmp_path, settings=StoreSettings())
    try:
        for result in by_line.values():
            assert result.transcript_id is not None
            kept = store.transcript(result.transcript_id)
            assert kept is not None
            assert kept.answer == (result.answer or "")
    finally:
        store.close()


def test_a_bad_input_line_is_named_without_a_traceback(tmp_path: Path) -> None:
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"prompt": "fine"}\n{"promt": "typo"}\n', encoding="utf-8")
    run = run_batch(str(rows), "-o", str(tmp_path / "out.jsonl"))
    assert run.returncode == 1
    assert "line 2: needs exactly one of" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "out.jsonl").exists()
