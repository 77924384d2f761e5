"""Consensus over whole data sets: one consensus per JSONL row, locally or on Ray; and the one
resumable job runner that batches and evaluations run on.

The pieces, each usable alone:

- `run_jobs` (jobs): jobs in, results out, bounded concurrency, resumable through a
  `ResultJournal` (journal), progress to a `ProgressSink` (`RichProgress` draws a bar).
- `read_rows`, `BatchRow`, `BatchResult` (rows): the JSONL input and output rows.
- `answer_row` (answering): the consensus over one row, its failure as a result.
- `run_consensus_batch` (consensus_batch): every row of a file, here or on Ray.
- `RayConsensusPool` (ray_pool): actors on a Ray cluster, each keeping one `Consensus`.
"""

from conclave.batch.answering import ConsensusFactory, KeepTranscript, answer_row
from conclave.batch.consensus_batch import RayOptions, run_consensus_batch
from conclave.batch.jobs import JobRunSummary, NoProgress, ProgressSink, run_jobs
from conclave.batch.journal import JournalError, ResultJournal
from conclave.batch.progress import RichProgress
from conclave.batch.rows import BatchInputError, BatchResult, BatchRow, RowError, read_rows

__all__ = [
    "BatchInputError",
    "BatchResult",
    "BatchRow",
    "ConsensusFactory",
    "JobRunSummary",
    "JournalError",
    "KeepTranscript",
    "NoProgress",
    "ProgressSink",
    "RayOptions",
    "ResultJournal",
    "RichProgress",
    "RowError",
    "answer_row",
    "read_rows",
    "run_consensus_batch",
    "run_jobs",
]
