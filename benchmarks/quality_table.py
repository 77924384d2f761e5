"""The tables of docs/quality.md, as Markdown, from a `conclave eval` report (no model call).

    .venv/bin/python benchmarks/quality_table.py eval-out/dev/report.json

Prints the left-out table (the choice made without each set, judged on it, against the best
member alone), what was chosen for each kind of question without each set, then each chosen
set-up's own numbers on every row (the tuned view, for comparison only).
"""

from __future__ import annotations

import argparse
import re
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
    kinds = sorted({kind for score in report.held_out.held_out for kind in score.chosen})
    print()
    print("| left out | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for score in report.held_out.held_out[:-1]:
        cells = [_described(score.chosen.get(kind, "-")) for kind in kinds]
        print(f"| {score.held_out} | " + " | ".join(cells) + " |")
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
            else f"{_described(short.get(setup, setup))} (chosen for "
            + ", ".join(kind for kind, name in chosen.items() if name == setup)
            + ")"
        )
        cells = []
        for dataset in [*(d.name for d in report.datasets), ALL_SETS]:
            scored = report.score(setup, dataset)
            cells.append("-" if scored is None else f"{scored.accuracy:.1%}")
        print(f"| {label} | " + " | ".join(cells) + " |")


_SETTING = re.compile(r"(sure_probability|reorderings):([\d.]+)|sure_by_kind:\{([^}]*)\}")


def _described(setup: str) -> str:
    """An `adaptive` variant named by its options block, as its threshold and reorderings
    ("0.4", "0.4; letter 0.35, reordered 2x"); any other name as it is."""
    found = {"sure_probability": "", "reorderings": "0", "sure_by_kind": ""}
    for match in _SETTING.finditer(setup):
        if match.group(3) is not None:
            found["sure_by_kind"] = match.group(3).replace(":", " ")
        else:
            found[match.group(1)] = match.group(2)
    if not found["sure_probability"]:
        return setup
    shown = found["sure_probability"]
    if found["sure_by_kind"]:
        shown += f"; {found['sure_by_kind']}"
    if found["reorderings"] != "0":
        shown += f", reordered {found['reorderings']}x"
    return shown


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
