"""`conclave eval`: compare every member alone and every strategy on question sets."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from conclave.cli import common
from conclave.cli.common import err, fail, out
from conclave.errors import ConclaveError
from conclave.evaluation.crossval import HeldOutScheme, cross_validate, parse_choice_rule
from conclave.evaluation.dataset import Dataset, RowLimits, load_dataset
from conclave.evaluation.evaluate import RESULTS_FILE, EvaluationRun, RowResult
from conclave.evaluation.grounded import grounded_datasets
from conclave.evaluation.grounded_report import grounded_table
from conclave.evaluation.outputs import write_outputs
from conclave.evaluation.render import held_out_table, report_table
from conclave.evaluation.report import build_report
from conclave.evaluation.scoring import Scorers
from conclave.evaluation.setups import DEFAULT_STRATEGY, Setup, parse_variation, plan_setups
from conclave.presets import load_presets
from conclave.providers.readiness import check_embedded_models

PIPED_TABLE_WIDTH = 220


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)


def eval_command(
    data: Annotated[
        list[Path],
        typer.Argument(
            help="JSONL data sets: one {id, question, answers, choices?, kind?} per line; with "
            "corpus (a folder of documents), a grounded data set, answered with and without "
            "its documents."
        ),
    ],
    config: Annotated[
        list[Path] | None,
        typer.Option(
            "--config", "-c", help="A config to evaluate (repeat for several). Default: embedded."
        ),
    ] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option("--strategy", "-s", help="A strategy to compare (repeat). Default: flare."),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Where results, cache and reports go.")
    ] = Path("eval-out"),
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-j", min=1, help="Questions answered at once.")
    ] = 2,
    limit: Annotated[
        list[str] | None,
        typer.Option(
            help="Only the first N rows of each data set, or NAME=N for the set NAME (repeat)."
        ),
    ] = None,
    vary: Annotated[
        list[str] | None,
        typer.Option(
            help="FIELD=V1,V2: one strategy set-up per value of a strategy option or config "
            "field (repeat: every combination), e.g. sure_probability=0.3,0.5."
        ),
    ] = None,
    member: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only this member alone (repeat; by model id or label). Default: every one."
        ),
    ] = None,
    held_out: Annotated[
        str,
        typer.Option(
            help="Choose among the strategy set-ups per kind of question without the rows "
            "they are reported on: sets (each data set left out in turn), folds:K, or none."
        ),
    ] = "sets",
    time_cap: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            help="With --held-out: choose only set-ups within this many times the best "
            "member's model seconds per question.",
        ),
    ] = None,
    choose: Annotated[
        str,
        typer.Option(
            help="With --held-out: per kind, one-se (the cheapest set-up within one standard "
            "error of the most right answers) or best (the most right answers).",
        ),
    ] = "one-se",
    scorer: Annotated[
        list[str] | None,
        typer.Option(
            help="A custom scorer, module:function(answer, row) -> bool, for every kind, or "
            "KIND=module:function for one kind (letter, number, text)."
        ),
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option(help="Run again the answers that failed last time.")
    ] = False,
    cache: Annotated[
        bool,
        typer.Option(help="Reuse deterministic calls (temperature 0 or a fixed seed)."),
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    members: Annotated[
        bool,
        typer.Option(
            help="Also run every member alone (--no-members: the strategies only, e.g. when "
            "the members' long grounded prompts would cost too much)."
        ),
    ] = True,
    report_only: Annotated[
        bool,
        typer.Option(
            help="Report on the rows every set-up has answered in OUT; run nothing (e.g. "
            "while a long run goes on, or after stopping it)."
        ),
    ] = False,
) -> None:
    """Run every member alone and every strategy on the same questions, and compare them.

    Reports accuracy (95% CI), the paired difference with the best member, tokens, cost and
    time.

    Resumable: rerun the same command to continue; finished answers are kept in OUT/results.jsonl.
    Writes OUT/report.json, OUT/report.html (a chart) and OUT/weights.json. With several data
    sets and strategy set-ups, the choice among them is also reported on rows left out of it.
    """
    try:
        limits = RowLimits.parse(limit or [])
        loaded = [(load_dataset(path, limit=limits.of(path.stem)), path) for path in data]
        datasets = grounded_datasets(loaded, out_dir)
        limits.check([d.name for d in datasets])
        configs = load_presets(config or [])
        variations = [parse_variation(text) for text in vary or []]
        setups = plan_setups(
            configs, strategy or [DEFAULT_STRATEGY], variations, members_alone=member
        )
        if not members:
            setups = tuple(setup for setup in setups if setup.kind != "member")
        scheme = None if held_out == "none" else HeldOutScheme.parse(held_out)
        rule = parse_choice_rule(choose)
        scorers = Scorers.from_specs(scorer or [])
        run = EvaluationRun(
            out_dir=out_dir, concurrency=concurrency, retry_failed=retry_failed, cache=cache
        )
        if report_only:
            results = run.kept(datasets, setups)
        else:
            results = asyncio.run(_evaluate(run, datasets, setups, scorers, quiet))
    except ConclaveError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        err.print(
            f"interrupted: finished answers are kept in {out_dir / RESULTS_FILE}; "
            "run the same command again to resume",
            style="yellow",
        )
        raise typer.Exit(130) from None
    report = build_report(datasets, setups, results)
    if scheme is not None:
        chosen = cross_validate(datasets, setups, results, scheme, time_cap=time_cap, rule=rule)
        report = report.model_copy(update={"held_out": chosen})
    written = write_outputs(report, out_dir, setups, configs)
    # Piped or redirected output has no width to fit: keep each line of the table whole.
    table_out = out if out.is_terminal else Console(highlight=False, width=PIPED_TABLE_WIDTH)
    table_out.print(report_table(report))
    if report.held_out is not None:
        table_out.print(held_out_table(report.held_out))
    if report.grounded:
        table_out.print(grounded_table(report.grounded))
    err.print("wrote " + ", ".join(str(path) for path in written), markup=False)


async def _evaluate(
    run: EvaluationRun,
    datasets: list[Dataset],
    setups: tuple[Setup, ...],
    scorers: Scorers,
    quiet: bool,
) -> list[RowResult]:
    registry = common.make_registry()
    if not registry.replaces("local"):  # a missing pack stops the run, not each of its calls
        for setup in setups:
            check_embedded_models(
                setup.config, registry.settings.models_dir, source=f"set-up {setup.name!r}"
            )
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
    )
    task = progress.add_task("answers", total=None)

    def started(todo: int, kept: int) -> None:
        progress.update(task, total=todo, description=f"answers ({kept} kept from before)")

    new: list[RowResult] = []

    def finished(result: RowResult) -> None:
        new.append(result)
        progress.advance(task)

    began = time.perf_counter()
    try:
        with progress:
            results = await run.run(
                datasets, setups, scorers, registry, on_start=started, on_result=finished
            )
    finally:
        await registry.aclose()
    calls = sum(r.calls for r in new)
    cached = sum(r.cached_calls for r in new)
    err.print(
        f"{len(new)} new answers in {time.perf_counter() - began:.0f} s "
        f"({calls} model calls, {cached} of them from the cache)",
        markup=False,
    )
    return results
