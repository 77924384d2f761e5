"""One consensus per row of a JSONL file, on this machine or on a Ray cluster.

```python
summary = await run_consensus_batch(
    Path("in.jsonl"), Path("out.jsonl"), partial(Consensus, config), concurrency=8
)
```
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import JsonValue

from conclave.batch.journal import JournalError, ResultJournal
from conclave.batch.rows import BatchResult, BatchRow, RowError, read_rows
from conclave.batch.runner import ProgressSink, RunSummary, run_rows
from conclave.consensus.transcript import Transcript
from conclave.errors import ConsensusError
from conclave.session import Consensus
from conclave.types import Usage

ConsensusFactory = Callable[[], Consensus]
"""Builds the `Consensus` a runner keeps (picklable, for Ray: it is shipped to each actor)."""

KeepTranscript = Callable[[Transcript], None]
"""Where a row's transcript goes once the row is answered (the run store, for the CLI)."""


@dataclass(frozen=True)
class RayOptions:
    """Run the rows on Ray actors, each keeping one `Consensus` (see conclave.batch.ray_pool)."""

    address: str | None = None
    """A cluster to join ("auto", "ray://head:10001", ...); None joins or starts a local one."""
    actors: int | None = None
    """How many actors; None: one per `actor_cpus` CPUs of the cluster."""
    actor_cpus: float = 1.0


async def answer_row(
    consensus: Consensus, row: BatchRow, keep: KeepTranscript | None = None
) -> BatchResult:
    """The consensus over one row, or the row's failure as a result: never raises for a
    failed consensus or model call, so that one bad row never stops a batch. `keep` receives
    the row's transcript, a failed run's included."""
    try:
        transcript = await consensus.ask(row.conversation)
    except ConsensusError as exc:
        if keep is not None and exc.transcript is not None:
            keep(exc.transcript)
        return _failed(row, exc, exc.transcript)
    except Exception as exc:  # a batch keeps going; the row records what happened
        return _failed(row, exc, None)
    if keep is not None:
        keep(transcript)
    return BatchResult(
        line=row.line,
        fields=row.fields,
        answer=transcript.answer,
        agreement=_agreement(transcript),
        usage=transcript.usage,
        transcript_id=transcript.id,
        input_sha256=row.input_sha256,
    )


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
) -> RunSummary:
    """Answer every row of `in_path` not yet in `out_path`, appending results to `out_path`.

    With `retry_failed`, rows whose earlier result is an error are run again. With `ray`,
    the rows run on Ray actors (`concurrency` rows at a time on each); otherwise on one
    `Consensus` here, `concurrency` rows at a time, each transcript handed to `keep` (Ray
    actors keep none: their rows carry the transcript id only).
    """
    rows = read_rows(in_path)
    journal = ResultJournal(out_path, BatchResult, key_of=lambda result: result.key)
    if retry_failed:
        journal.rewrite(keep=lambda result: result.ok)
    if ray is not None:
        from conclave.batch.ray_pool import RayConsensusPool

        with RayConsensusPool.start(
            make_consensus,
            address=ray.address,
            actors=ray.actors,
            actor_cpus=ray.actor_cpus,
            rows_per_actor=concurrency,
        ) as pool:
            return await run_rows(
                rows,
                pool.answer,
                journal,
                concurrency=pool.capacity,
                is_failure=_is_failure,
                progress=progress,
                check_resumed=_same_input,
            )
    consensus = make_consensus()
    try:

        async def work(row: BatchRow) -> BatchResult:
            return await answer_row(consensus, row, keep)

        return await run_rows(
            rows,
            work,
            journal,
            concurrency=concurrency,
            is_failure=_is_failure,
            progress=progress,
            check_resumed=_same_input,
        )
    finally:
        await consensus.aclose()


def _is_failure(result: BatchResult) -> bool:
    return not result.ok


def _same_input(row: BatchRow, result: BatchResult) -> None:
    if row.input_sha256 != result.input_sha256:
        raise JournalError(
            f"the output already holds a result for input line {row.line}, but from a different "
            f"line: the input changed since that run. Give another --out, or remove the old one"
        )


def _failed(row: BatchRow, exc: Exception, transcript: Transcript | None) -> BatchResult:
    return BatchResult(
        line=row.line,
        fields=row.fields,
        usage=transcript.usage if transcript else Usage(),
        transcript_id=transcript.id if transcript else None,
        error=RowError(type=type(exc).__name__, message=str(exc)),
        input_sha256=row.input_sha256,
    )


def _agreement(transcript: Transcript) -> JsonValue:
    """The transcript's `agreement` when this version of the engine computes one."""
    return transcript.model_dump(mode="json", include={"agreement"}).get("agreement")
