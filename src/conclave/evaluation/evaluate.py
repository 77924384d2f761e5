"""An evaluation run: every set-up answers every row, each answer is scored and kept.

Jobs go row by row (the sets taken in turn), every member alone first, then the strategies:
so no strategy's call finds the question already read into an embedded model's context by the
member alone (a prompt read once is not read again), and each is timed as a user would see it.
A run stopped early is reported on the rows every set-up answered. They run on the batch's job
runner (`conclave.batch.jobs`): results go to the journal `results.jsonl` as they finish, each
after its transcript in `transcripts.jsonl`, and a rerun with the same output directory skips
the (set-up, row) pairs already scored with the set-up and row as they are now. Deterministic
calls come from the call cache (`calls.sqlite`), so a member's round-0 answer is computed once
for all set-ups.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from conclave.batch.jobs import run_jobs
from conclave.batch.journal import ResultJournal
from conclave.config import DocumentsOptions
from conclave.consensus.answers import Question
from conclave.consensus.forms import is_in_form
from conclave.consensus.strategies.swarm import swarm_report
from conclave.consensus.transcript import Transcript
from conclave.errors import ConsensusError
from conclave.evaluation.cache import CachingRegistry, CallCache, metered
from conclave.evaluation.dataset import Dataset, EvalRow
from conclave.evaluation.grounded import (
    GroundedOutcome,
    answering_config,
    grounded_correct,
    grounded_outcome,
)
from conclave.evaluation.scoring import Scorers
from conclave.evaluation.setups import Setup
from conclave.providers.registry import ProviderRegistry
from conclave.session import Consensus
from conclave.types import Frozen

RESULTS_FILE = "results.jsonl"
TRANSCRIPTS_FILE = "transcripts.jsonl"
CACHE_FILE = "calls.sqlite"


class RowResult(Frozen):
    """One set-up's scored answer to one row."""

    dataset: str
    row_id: str
    setup: str
    setup_fingerprint: str
    row_fingerprint: str
    answer: str
    correct: bool
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    wall_s: float = 0.0
    """Measured time of this answer (short when the call cache served it)."""
    model_s: float = 0.0
    """Seconds its model calls took when computed, cached or not (summed over calls)."""
    calls: int = 0
    cached_calls: int = 0
    rounds: int = 0
    """Rounds the run took: 1 when its first round answered."""
    in_form: bool | None = None
    """Whether the answer is in the form the row's instruction asks, and nothing more (the
    letter alone, the number alone, every part on its numbered line); None when the
    instruction asks for no form."""
    transcript_id: str | None = None
    parts_correct: tuple[bool, ...] = ()
    """For a row of several parts, whether each part was right (`correct`: all of them)."""
    first_plan_valid: bool | None = None
    """For a swarm, whether the orchestrator's first plan could be used."""
    grounding: GroundedOutcome | None = None
    """For a grounded data set's answers with the documents: what it did with them."""

    @property
    def key(self) -> str:
        return result_key(self.dataset, self.row_id, self.setup)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class TranscriptEntry(Frozen):
    """A transcript kept for inspection, with what it answered."""

    dataset: str
    row_id: str
    setup: str
    transcript: Transcript


def result_key(dataset: str, row_id: str, setup: str) -> str:
    return f"{dataset}\x1f{row_id}\x1f{setup}"


def row_fingerprint(row: EvalRow) -> str:
    """Changes when the row's prompt or accepted answers change."""
    shown = "\x1f".join((row.prompt(), *row.answers))
    return hashlib.sha256(shown.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Job:
    """One set-up to run on one row."""

    dataset: str
    row: EvalRow
    setup: Setup
    documents: DocumentsOptions | None = None
    """The collection the answer is grounded in (a grounded data set's "+docs" parts)."""

    @property
    def key(self) -> str:
        return result_key(self.dataset, self.row.id, self.setup.name)


class Answerer:
    """Answers rows with each set-up through `conclave.Consensus`, as a user would.

    Candidates reach the aggregator shuffled by a generator seeded from the set-up and the row,
    so a rerun sends the very same calls (and the call cache can serve them).
    """

    def __init__(self, registry: ProviderRegistry) -> None:
        self._registry = registry

    async def transcript(
        self, setup: Setup, row: EvalRow, documents: DocumentsOptions | None = None
    ) -> Transcript:
        rng = random.Random(f"{setup.fingerprint}\x1f{row.id}")
        config = answering_config(setup.config, row, documents)
        consensus = Consensus(config, registry=self._registry, rng=rng)
        return await consensus.ask(row.prompt())  # not closed: the providers are shared


async def answer_and_score(
    job: Job, answerer: Answerer, scorers: Scorers
) -> tuple[RowResult, Transcript | None]:
    """Run one set-up on one row and score its answer; a failed run scores as wrong."""
    started = time.perf_counter()
    error: str | None = None
    with metered() as meter:
        try:
            transcript: Transcript | None = await answerer.transcript(
                job.setup, job.row, job.documents
            )
        except ConsensusError as exc:
            transcript, error = exc.transcript, str(exc)
    answer = transcript.answer if transcript is not None and error is None else ""
    usage = transcript.usage if transcript is not None else None
    question = Question.read(job.row.prompt())
    swarm = swarm_report(transcript) if transcript is not None else None
    result = RowResult(
        dataset=job.dataset,
        row_id=job.row.id,
        setup=job.setup.name,
        setup_fingerprint=job.setup.fingerprint,
        row_fingerprint=row_fingerprint(job.row),
        answer=answer,
        correct=error is None and grounded_correct(answer, job.row, scorers, transcript),
        error=error,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        cost_usd=usage.cost_usd if usage else None,
        wall_s=time.perf_counter() - started,
        model_s=meter.model_s,
        calls=meter.calls,
        cached_calls=meter.cached_calls,
        rounds=len(transcript.rounds) if transcript is not None else 0,
        in_form=is_in_form(question, answer) if question.asks_form else None,
        transcript_id=transcript.id if transcript is not None else None,
        parts_correct=scorers.score_parts(answer, job.row) if job.row.kind == "parts" else (),
        first_plan_valid=swarm.plan.first_valid if swarm is not None else None,
        grounding=(
            grounded_outcome(transcript, job.row)
            if job.documents is not None and transcript is not None
            else None
        ),
    )
    return result, transcript


def all_jobs(datasets: Sequence[Dataset], setups: Sequence[Setup]) -> list[Job]:
    """Every (set-up, row) pair: the members alone row by row, then the strategies row by
    row."""
    members = [setup for setup in setups if setup.kind == "member"]
    strategies = [setup for setup in setups if setup.kind != "member"]
    return [
        Job(dataset=dataset.name, row=row, setup=setup, documents=dataset.documents)
        for group in (members, strategies)
        for dataset, row in _interleaved(datasets)
        for setup in group
    ]


def _interleaved(datasets: Sequence[Dataset]) -> list[tuple[Dataset, EvalRow]]:
    """Row 1 of every set, then row 2 of every set...: a run stopped early covers every set."""
    longest = max((len(d.rows) for d in datasets), default=0)
    return [(d, d.rows[i]) for i in range(longest) for d in datasets if i < len(d.rows)]


def current_results(
    datasets: Sequence[Dataset], setups: Sequence[Setup], done: dict[str, RowResult]
) -> list[RowResult]:
    """The kept results that belong to these rows and set-ups as they are now."""
    results = []
    for dataset in datasets:
        for row in dataset.rows:
            for setup in setups:
                kept = done.get(result_key(dataset.name, row.id, setup.name))
                if kept is not None and _still_valid(kept, row, setup, retry_failed=False):
                    results.append(kept)
    return results


def _still_valid(kept: RowResult, row: EvalRow, setup: Setup, retry_failed: bool) -> bool:
    return (
        kept.setup_fingerprint == setup.fingerprint
        and kept.row_fingerprint == row_fingerprint(row)
        and not (retry_failed and kept.error is not None)
    )


@dataclass
class EvaluationRun:
    """Where an evaluation keeps its results, and how it runs."""

    out_dir: Path
    concurrency: int = 2
    retry_failed: bool = False
    cache: bool = True
    """Reuse deterministic calls, kept in `calls.sqlite` across runs."""

    def results_log(self) -> ResultJournal[RowResult]:
        return ResultJournal(self.out_dir / RESULTS_FILE, RowResult, key_of=lambda r: r.key)

    def transcripts_log(self) -> ResultJournal[TranscriptEntry]:
        return ResultJournal(
            self.out_dir / TRANSCRIPTS_FILE,
            TranscriptEntry,
            key_of=lambda t: result_key(t.dataset, t.row_id, t.setup),
        )

    def kept(self, datasets: Sequence[Dataset], setups: Sequence[Setup]) -> list[RowResult]:
        """The results already written, running nothing: only rows every set-up has answered,
        so that every set-up is measured on the same rows."""
        results = current_results(datasets, setups, self.results_log().read())
        answered: dict[tuple[str, str], int] = {}
        for result in results:
            row = (result.dataset, result.row_id)
            answered[row] = answered.get(row, 0) + 1
        return [r for r in results if answered[(r.dataset, r.row_id)] == len(setups)]

    async def run(
        self,
        datasets: Sequence[Dataset],
        setups: Sequence[Setup],
        scorers: Scorers,
        registry: ProviderRegistry,
        *,
        on_start: Callable[[int, int], None] = lambda todo, kept: None,
        on_result: Callable[[RowResult], None] = lambda result: None,
    ) -> list[RowResult]:
        """Run what is not done yet with the models of `registry` (left open for the caller);
        return every current result, kept and new.

        `on_start(todo, kept)` is told the number of jobs to run and of results kept;
        `on_result` each new result as it is written.
        """
        results = self.results_log()
        transcripts = self.transcripts_log()
        call_cache = CallCache(self.out_dir / CACHE_FILE) if self.cache else None
        answerer = Answerer(CachingRegistry(call_cache, registry))

        async def work(job: Job) -> RowResult:
            result, transcript = await answer_and_score(job, answerer, scorers)
            if transcript is not None:  # before its result: a kept result has its transcript
                transcripts.append(
                    TranscriptEntry(
                        dataset=job.dataset,
                        row_id=job.row.id,
                        setup=job.setup.name,
                        transcript=transcript,
                    )
                )
                await asyncio.to_thread(transcripts.sync)
            return result

        def still_done(job: Job, kept: RowResult) -> bool:
            return _still_valid(kept, job.row, job.setup, self.retry_failed)

        transcripts.open()
        try:
            await run_jobs(
                all_jobs(datasets, setups),
                work,
                results,
                concurrency=self.concurrency,
                is_failure=lambda result: result.error is not None,
                still_done=still_done,
                progress=_Announcer(on_start),
                on_result=lambda job, result: on_result(result),
            )
        finally:
            transcripts.close()
            if call_cache is not None:
                call_cache.close()
        return current_results(datasets, setups, results.read())


@dataclass(frozen=True)
class _Announcer:
    """Tells `on_start(todo, kept)` how many jobs a run has to do and found done."""

    on_start: Callable[[int, int], None]

    def start(self, total: int, already_done: int) -> None:
        self.on_start(total - already_done, already_done)

    def advance(self, *, failed: bool) -> None:
        pass

    def stop(self) -> None:
        pass
