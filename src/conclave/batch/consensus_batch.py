"""One consensus per row of a JSONL file, on this machine or on a Ray cluster.

```python
summary = await run_consensus_batch(
    Path("in.jsonl"), Path("out.jsonl"), partial(Consensus, config), concurrency=8
)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conclave.batch.answering import ConsensusFactory, KeepTranscript, answer_row
from conclave.batch.jobs import JobRunSummary, ProgressSink, run_jobs
from conclave.batch.journal import JournalError, ResultJournal
from conclave.batch.ray_pool import RayConsensusPool
from conclave.batch.rows import BatchResult, BatchRow, read_rows


@dataclass(frozen=True)
class RayOptions:
    """Run the rows on Ray actors, each keeping one `Consensus` (see conclave.batch.ray_pool)."""

    address: str | None = None
    """A cluster to join ("auto", "ray://head:10001", ...); None joins or starts a local one."""
    actors: int | None = None
    """How many actors; None: one per `actor_cpus` CPUs of the cluster."""
    actor_cpus: float = 1.0


async def run_consensus_batch(
    in_path: Path,
    out_path: Path,
    make_consensus: ConsensusFactory,
    *,
    concurrency: int,
    retry_failed: bool = False,
    ray: RayOptions | None = None,
    progress: ProgressSink | None = None,
    keep: KeepTranscript | None = None,
) -> JobRunSummary:
    """Answer every row of `in_path` not yet in `out_path`, appending results to `out_path`.

    With `retry_failed`, rows whose earlier result is an error are run again. With `ray`,
    the rows run on Ray actors (`concurrency` rows at a time on each); otherwise on one
    `Consensus` here, `concurrency` rows at a time, each transcript handed to `keep` (Ray
    actors keep none: their rows carry the transcript id only). A JournalError, before any
    row runs, when `out_path` holds results of other input.
    """
    rows = read_rows(in_path)
    journal = ResultJournal(out_path, BatchResult, key_of=lambda result: result.key)
    _check_same_rows(rows, journal)
    if retry_failed:
        journal.rewrite(keep=lambda result: result.ok)
    if ray is not None:
        with RayConsensusPool.start(
            make_consensus,
            address=ray.address,
            actors=ray.actors,
            actor_cpus=ray.actor_cpus,
            rows_per_actor=concurrency,
        ) as pool:
            return await run_jobs(
                rows,
                pool.answer,
                journal,
                concurrency=pool.capacity,
                is_failure=_is_failure,
                progress=progress,
            )
    consensus = make_consensus()
    try:

        async def work(row: BatchRow) -> BatchResult:
            return await answer_row(consensus, row, keep)

        return await run_jobs(
            rows,
            work,
            journal,
            concurrency=concurrency,
            is_failure=_is_failure,
            progress=progress,
        )
    finally:
        await consensus.aclose()


def _is_failure(result: BatchResult) -> bool:
    return not result.ok


def _check_same_rows(rows: list[BatchRow], journal: ResultJournal[BatchResult]) -> None:
    """Refuse an output written from other input: a result for a line the input lacks, or for
    a line whose content changed since."""
    by_key = {row.key: row for row in rows}
    done = journal.read()
    strangers = [key for key in done if key not in by_key]
    if strangers:
        raise JournalError(
            f"{journal.path} holds results for rows that are not in this input "
            f"(lines {', '.join(strangers[:5])}{', ...' if len(strangers) > 5 else ''}): "
            f"it was written from other data; give another --out"
        )
    for key, result in done.items():
        if by_key[key].input_sha256 != result.input_sha256:
            raise JournalError(
                f"{journal.path} already holds a result for input line {key}, but from a "
                f"different line: the input changed since that run. Give another --out, or "
                f"remove the old one"
            )
