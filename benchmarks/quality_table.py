"""The tables of docs/quality.md, as Markdown, from a `conclave eval` report (no model call).

    .venv/bin/python benchmarks/quality_table.py eval-out/dev/report.json

Prints the left-out table (the choice made without each set, judged on it, against the best
member alone), then each chosen set-up's own numbers on every row (the tuned view, for
comparison only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from conclave.evaluation.render import short_names
from conclave.evaluation.report import ALL_SETS, HeldOutScore, Report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="report.json of a `conclave eval` run")
    report = Report.model_validate_json(parser.parse_args().report.read_text(encoding="utf-8"))
    if report.held_out is None:
        raise SystemExit("the report has no held-out choice: run conclave eval with --held-out")
    print(
        "| left out | n | best member alone | the choice made without it | diff (won/lost), p "
        "| model s/q (x best) | answered at once | in form |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for score in report.held_out.held_out:
        print(_held_out_row(score))
    chosen = report.held_out.chosen_on_all
    short = short_names(sorted(set(chosen.values())))
    print()
    print("| set-up (on every row) | " + " | ".join(d.name for d in report.datasets) + " | all |")
    print("|---|" + "---|" * (len(report.datasets) + 1))
    best = report.best_member.get(ALL_SETS, "")
    for setup in [best, *dict.fromkeys(chosen.values())]:
        label = (
            setup
            if setup == best
            else f"{short.get(setup, setup)} (chosen for "
            + ", ".join(kind for kind, name in chosen.items() if name == setup)
            + ")"
        )
        cells = []
        for dataset in [*(d.name for d in report.datasets), ALL_SETS]:
            scored = report.score(setup, dataset)
            cells.append("-" if scored is None else f"{scored.accuracy:.1%}")
        print(f"| {label} | " + " | ".join(cells) + " |")


def _held_out_row(score: HeldOutScore) -> str:
    paired = score.vs_best_member
    name = f"**{score.held_out}**" if score.held_out == "all" else score.held_out
    form = "-" if score.in_form_share is None else f"{score.in_form_share:.0%}"
    return (
        f"| {name} | {score.rows} | {score.best_member_accuracy:.1%} | {score.accuracy:.1%} "
        f"[{score.ci_low:.1%}, {score.ci_high:.1%}] | {paired.difference * 100:+.1f} pts "
        f"(+{paired.wins}/-{paired.losses}), p={paired.p_value:.3f} | "
        f"{score.model_s_per_question:.1f} ({score.time_ratio:.2f}x) | "
        f"{score.first_round_share:.0%} | {form} |"
    )


if __name__ == "__main__":
    main()
