"""`conclave batch IN.jsonl --out OUT.jsonl`: one consensus per row, locally or on Ray."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from conclave.batch.consensus_batch import RayOptions, run_consensus_batch
from conclave.batch.jobs import JobRunSummary, NoProgress
from conclave.batch.progress import RichProgress
from conclave.cli.common import ConfigOption, IterationsOption, err, fail, resolve_config
from conclave.cli.kept_runs import close_cli_store, keep_run, open_cli_store
from conclave.errors import ConclaveError
from conclave.session import Consensus


def register(app: typer.Typer) -> None:
    app.command()(batch)


def batch(
    in_path: Annotated[
        Path,
        typer.Argument(
            metavar="IN.jsonl",
            help='One JSON object per line: "prompt" (or "messages"), optional "system", '
            "and any fields to carry through.",
        ),
    ],
    out_path: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            metavar="OUT.jsonl",
            help="Results, one line per input row, appended as rows finish. Run again with "
            "the same --out to resume: rows already there are skipped.",
        ),
    ],
    config: ConfigOption = None,
    iterations: IterationsOption = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "-j",
            min=1,
            help="Rows in flight at once (with --ray: on each actor).",
        ),
    ] = 4,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run the rows whose result is an error again.")
    ] = False,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Run on Ray: local (a new Ray on this machine), auto (the cluster this "
            "machine belongs to), or a cluster's address (ray://head:10001).",
        ),
    ] = None,
    actors: Annotated[
        int | None,
        typer.Option(min=1, help="With --ray: actors (default: one per --actor-cpus CPUs)."),
    ] = None,
    actor_cpus: Annotated[
        float, typer.Option(min=0.0, help="With --ray: CPUs reserved by each actor.")
    ] = 1.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run one consensus per row of a JSONL file, locally or on a Ray cluster (resumable)."""
    consensus_config = resolve_config(config, iterations)
    ray_options = (
        None if ray is None else RayOptions(address=ray, actors=actors, actor_cpus=actor_cpus)
    )
    store = open_cli_store(consensus_config) if ray is None else None
    try:
        summary = asyncio.run(
            run_consensus_batch(
                in_path,
                out_path,
                partial(Consensus, consensus_config),
                concurrency=concurrency,
                retry_failed=retry_failed,
                ray=ray_options,
                progress=NoProgress() if quiet else RichProgress(err),
                keep=partial(keep_run, store, config=consensus_config),
            )
        )
    except ConclaveError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        err.print(f"interrupted: the rows finished are in {out_path}; run again to resume")
        raise typer.Exit(130) from None
    finally:
        close_cli_store(store)
    _report(summary, out_path)
    if summary.failed or summary.failed_earlier:
        raise typer.Exit(1)


def _report(summary: JobRunSummary, out_path: Path) -> None:
    """One line for the run; a failed row, from this run or kept from an earlier one, is
    counted and points to `--retry-failed`."""
    skipped = f", {summary.skipped} already done" if summary.skipped else ""
    if summary.failed_earlier:
        skipped += f" ([red]{summary.failed_earlier} failed[/] earlier)"
    failed = f", [red]{summary.failed} failed[/]" if summary.failed else ""
    err.print(
        f"{summary.finished} rows in {summary.elapsed_s:.1f} s "
        f"({summary.jobs_per_s:.2f} rows/s){skipped}{failed} -> {escape(str(out_path))}"
    )
    if summary.failed or summary.failed_earlier:
        err.print(
            f"{summary.failed + summary.failed_earlier} row(s) in {escape(str(out_path))} hold "
            "an error instead of an answer: run again with --retry-failed to answer them"
        )
