"""Consensus over whole data sets: one consensus per JSONL row, locally or on Ray.

The pieces, each usable alone:

- `run_rows` (runner): rows in, results out, bounded concurrency, resumable through a
  `ResultJournal` (journal), progress to a `ProgressSink` (`RichProgress` draws a bar).
- `read_rows`, `BatchRow`, `BatchResult` (rows): the JSONL input and output rows.
- `answer_row`, `run_consensus_batch` (consensus_batch): the consensus per row.
- `RayConsensusPool` (ray_pool): actors on a Ray cluster, each keeping one `Consensus`.
"""

from conclave.batch.consensus_batch import (
    ConsensusFactory,
    RayOptions,
    answer_row,
    run_consensus_batch,
)
from conclave.batch.journal import JournalError, ResultJournal
from conclave.batch.progress import RichProgress
from conclave.batch.rows import BatchInputError, BatchResult, BatchRow, RowError, read_rows
from conclave.batch.runner import NoProgress, ProgressSink, RunSummary, run_rows

__all__ = [
    "BatchInputError",
    "BatchResult",
    "BatchRow",
    "ConsensusFactory",
    "JournalError",
    "NoProgress",
    "ProgressSink",
    "RayOptions",
    "ResultJournal",
    "RichProgress",
    "RowError",
    "RunSummary",
    "answer_row",
    "read_rows",
    "run_consensus_batch",
    "run_rows",
]
