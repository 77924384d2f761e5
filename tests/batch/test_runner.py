"""The job runner and its journal: resuming, torn lines, refusing other data, bounded
concurrency, failures as rows; on the shipped fakes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from batch.fakes import ScriptedPanel
from batch.upstream import write_rows
from conclave.batch import (
    BatchResult,
    BatchRow,
    JournalError,
    ResultJournal,
    answer_row,
    read_rows,
    run_consensus_batch,
    run_jobs,
)


def output_lines(path: Path) -> list[int]:
    return [json.loads(line)["line"] for line in path.read_text(encoding="utf-8").splitlines()]


def journal(path: Path) -> ResultJournal[BatchResult]:
    return ResultJournal(path, BatchResult, key_of=lambda result: result.key)


async def test_every_row_is_answered_once_with_its_fields(tmp_path: Path) -> None:
    rows_path = write_rows(tmp_path / "in.jsonl", 30)
    panel = ScriptedPanel()
    out = tmp_path / "out.jsonl"
    summary = await run_consensus_batch(rows_path, out, panel.consensus, concurrency=4)
    assert (summary.jobs, summary.finished, summary.skipped, summary.failed) == (30, 30, 0, 0)
    results = [BatchResult.model_validate_json(line) for line in out.read_text().splitlines()]
    assert sorted(result.line for result in results) == list(range(1, 31))
    for result in results:
        assert result.fields == {"id": result.line - 1}
        assert result.answer == f"answer for Q-{result.line - 1}"
        assert result.error is None
        assert result.transcript_id
        assert result.usage.completion_tokens > 0


async def test_a_second_run_skips_the_rows_already_in_the_output(tmp_path: Path) -> None:
    rows_path = write_rows(tmp_path / "in.jsonl", 20)
    rows = read_rows(rows_path)
    out = tmp_path / "out.jsonl"
    first = ScriptedPanel()
    consensus = first.consensus()
    with out.open("w") as handle:  # a run that finished 8 rows before it stopped
        for row in rows[:8]:
            handle.write((await answer_row(consensus, row)).model_dump_json() + "\n")

    second = ScriptedPanel()
    summary = await run_consensus_batch(rows_path, out, second.consensus, concurrency=3)
    assert (summary.skipped, summary.finished) == (8, 12)
    assert len(second.asked) == 12
    assert sorted(output_lines(out)) == list(range(1, 21))


async def test_a_torn_last_line_is_cut_and_its_row_run_again(tmp_path: Path) -> None:
    rows_path = write_rows(tmp_path / "in.jsonl", 5)
    rows = read_rows(rows_path)
    consensus = ScriptedPanel().consensus()
    out = tmp_path / "out.jsonl"
    whole = (await answer_row(consensus, rows[0])).model_dump_json() + "\n"
    torn = (await answer_row(consensus, rows[1])).model_dump_json()[:40]  # killed mid-write
    out.write_text(whole + torn)

    summary = await run_consensus_batch(rows_path, out, ScriptedPanel().consensus, concurrency=2)
    assert (summary.skipped, summary.finished) == (1, 4)
    assert sorted(output_lines(out)) == [1, 2, 3, 4, 5]


async def test_an_unreadable_line_inside_the_output_is_refused_untouched(tmp_path: Path) -> None:
    rows_path = write_rows(tmp_path / "in.jsonl", 3)
    out = tmp_path / "out.jsonl"
    out.write_text('{"not": "a result"}\n{"line": 1}\n')
    before = out.read_bytes()
    with pytest.raises(JournalError, match=r"out\.jsonl line 1 is not a result"):
        await run_consensus_batch(rows_path, out, ScriptedPanel().consensus, concurrency=2)
    assert out.read_bytes() == before


async def test_output_written_from_other_data_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    await run_consensus_batch(
        write_rows(tmp_path / "in.jsonl", 4), out, ScriptedPanel().consensus, concurrency=2
    )
    changed = write_rows(tmp_path / "changed.jsonl", 4)
    lines = changed.read_text().splitlines()
    lines[0] = json.dumps({"prompt": "another question Q-9"})
    changed.write_text("\n".join(lines) + "\n")
    with pytest.raises(JournalError, match="input line 1, but from a different line"):
        await run_consensus_batch(changed, out, ScriptedPanel().consensus, concurrency=2)
    shorter = write_rows(tmp_path / "shorter.jsonl", 2)
    with pytest.raises(JournalError, match="rows that are not in this input"):
        await run_consensus_batch(shorter, out, ScriptedPanel().consensus, concurrency=2)


async def test_failures_are_rows_and_retry_failed_runs_only_those(tmp_path: Path) -> None:
    rows_path = write_rows(tmp_path / "in.jsonl", 10, failing=frozenset({2, 7}))
    out = tmp_path / "out.jsonl"
    summary = await run_consensus_batch(rows_path, out, ScriptedPanel().consensus, concurrency=4)
    assert (summary.finished, summary.failed) == (10, 2)
    failed = {
        result.line: result
        for result in map(BatchResult.model_validate_json, out.read_text().splitlines())
        if result.error
    }
    assert sorted(failed) == [3, 8]
    assert failed[3].error is not None
    assert failed[3].error.type == "ConsensusError"
    assert "scripted failure" in failed[3].error.message
    assert failed[3].answer is None

    healed = ScriptedPanel(failing=False)
    summary = await run_consensus_batch(
        rows_path, out, healed.consensus, concurrency=4, retry_failed=True
    )
    assert (summary.skipped, summary.finished, summary.failed) == (8, 2, 0)
    assert len(healed.asked) == 2
    results = [BatchResult.model_validate_json(line) for line in out.read_text().splitlines()]
    assert sorted(result.line for result in results) == list(range(1, 11))
    assert all(result.ok for result in results)


async def test_no_more_rows_than_the_concurrency_are_in_flight(tmp_path: Path) -> None:
    rows = read_rows(write_rows(tmp_path / "in.jsonl", 24))
    in_flight = 0
    most = 0

    async def work(row: BatchRow) -> BatchResult:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return BatchResult(line=row.line, input_sha256=row.input_sha256)

    summary = await run_jobs(
        rows,
        work,
        journal(tmp_path / "out.jsonl"),
        concurrency=5,
        is_failure=lambda result: not result.ok,
    )
    assert summary.finished == 24
    assert most == 5


async def test_an_error_in_work_stops_the_run_and_keeps_the_finished_rows(tmp_path: Path) -> None:
    rows = read_rows(write_rows(tmp_path / "in.jsonl", 10))
    out = tmp_path / "out.jsonl"

    async def work(row: BatchRow) -> BatchResult:
        if row.line == 4:
            raise RuntimeError("the cluster went away")
        return BatchResult(line=row.line, input_sha256=row.input_sha256)

    with pytest.raises(RuntimeError, match="cluster went away"):
        await run_jobs(rows, work, journal(out), concurrency=1, is_failure=lambda r: not r.ok)
    assert output_lines(out) == [1, 2, 3]


def test_the_journal_reads_back_what_a_killed_run_left(tmp_path: Path) -> None:
    """Its one torn-line policy: an unfinished or unreadable last line is dropped (and cut when
    opened for appending); a later line for a key replaces an earlier one; blank lines are
    skipped."""
    out = tmp_path / "out.jsonl"
    first, second = (BatchResult(line=n, input_sha256="x") for n in (1, 2))
    again = first.model_copy(update={"answer": "again"})
    kept = f"{first.model_dump_json()}\n\n{second.model_dump_json()}\n{again.model_dump_json()}\n"
    for torn in (second.model_dump_json()[:30], '{"line": 3}\n'):
        out.write_text(kept + torn)
        assert journal(out).read() == {"1": again, "2": second}
        assert out.read_text() == kept + torn  # reading changes nothing

        opened = journal(out)
        assert opened.open() == {"1": again, "2": second}
        opened.close()
        assert opened.cut_torn_line
        assert out.read_text() == kept


def test_the_journal_refuses_an_unreadable_line_before_the_last(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    good = BatchResult(line=1, input_sha256="x").model_dump_json()
    out.write_text(f"{good}\n{{not json\n{good}\n")
    before = out.read_bytes()
    for reading in (journal(out).read, journal(out).open):
        with pytest.raises(JournalError, match=r"results\.jsonl line 2 is not a result"):
            reading()
    assert out.read_bytes() == before
