"""One row's consensus: the answer, or the row's failure as a result, never an exception.

Both places a row is answered use it: this process (`run_consensus_batch`) and each Ray actor
(`RayConsensusPool`).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import JsonValue

from conclave.batch.rows import BatchResult, BatchRow, RowError
from conclave.consensus.transcript import Transcript
from conclave.errors import ConsensusError
from conclave.session import Consensus
from conclave.types import Usage

ConsensusFactory = Callable[[], Consensus]
"""Builds the `Consensus` a runner keeps (picklable, for Ray: it is shipped to each actor)."""

KeepTranscript = Callable[[Transcript], None]
"""Where a row's transcript goes once the row is answered (the run store, for the CLI)."""


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
