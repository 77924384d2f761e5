"""The report for people: a Rich table for the terminal and a self-contained HTML page with an
inline SVG chart (no script, no CDN: it opens from disk with no network)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from rich.markup import escape as markup_escape
from rich.table import Table

from conclave.evaluation.report import CrossValidation, HeldOutScore, Report, SetupScore
from conclave.evaluation.setups import split_values

_COLUMNS = (
    "set-up",
    "n",
    "accuracy [95% CI]",
    "vs best member: diff (won/lost) p",
    "tokens/q",
    "cost",
    "model s/q",
    "wall s/q",
    "at once",
    "in form",
    "errors",
)


def report_table(report: Report) -> Table:
    """One line per set-up and data set, a section per data set."""
    table = Table(title="conclave eval", title_justify="left")
    columns = [_COLUMNS[0], "data set", *_COLUMNS[1:]]
    details = any(
        s.part_accuracy is not None or s.valid_first_plans is not None for s in report.scores
    )
    if details:
        columns.append("parts right / valid 1st plans")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index < 2 else "right")
    last_dataset = None
    for score in sorted(report.scores, key=lambda s: _dataset_order(report, s.dataset)):
        if last_dataset is not None and score.dataset != last_dataset:
            table.add_section()
        last_dataset = score.dataset
        cells = [markup_escape(cell) for cell in _cells(report, score)]
        if details:
            cells.append(f"{_percent(score.part_accuracy)} / {_percent(score.valid_first_plans)}")
        table.add_row(cells[0], markup_escape(score.dataset), *cells[1:])
    return table


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


_HELD_OUT_COLUMNS = (
    "left out",
    "n",
    "chosen on the rest (per kind)",
    "accuracy [95% CI]",
    "best member",
    "diff (won/lost) p",
    "model s/q (x best)",
    "tokens/q (x best)",
    "at once",
    "in form",
)


def held_out_table(held_out: CrossValidation) -> Table:
    """The choice judged on what it was not made on: a line per part left out, then all. The
    set-ups chosen are numbered (`letter #1`), and listed under the table by what varies
    between them (`#1 [reorderings=2]`)."""
    cap = "" if held_out.time_cap is None else f", time within {held_out.time_cap:g}x"
    title = f"left out of every choice ({held_out.scheme}{cap}, rule {held_out.rule})"
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(_HELD_OUT_COLUMNS):
        table.add_column(column, justify="left" if index in (0, 2) else "right")
    numbers = _chosen_numbers(held_out)
    for score in held_out.held_out:
        if score.held_out == "all":
            table.add_section()
        table.add_row(*(markup_escape(cell) for cell in _held_out_cells(score, numbers)))
    short = short_names(list(numbers))
    legend = [f"{numbers[name]} {short[name]}" for name in numbers]
    chosen = ", ".join(f"{kind} {numbers[name]}" for kind, name in held_out.chosen_on_all.items())
    lines = [*legend, f"chosen on every row (the one to ship): {chosen}"]
    table.caption = markup_escape("\n".join(lines))
    table.caption_justify = "left"
    return table


def _chosen_numbers(held_out: CrossValidation) -> dict[str, str]:
    """Each set-up chosen anywhere, numbered "#1", "#2"... in the order first chosen."""
    names = [n for s in held_out.held_out for n in s.chosen.values() if n != "varies"]
    names += list(held_out.chosen_on_all.values())
    return {name: f"#{number}" for number, name in enumerate(dict.fromkeys(names), start=1)}


def short_names(names: Sequence[str]) -> dict[str, str]:
    """Variant names ("adaptive[a=1,b=2]") shortened to the fields whose values differ among
    them ("[b=2]"); other names kept."""
    fields = {name: _variant_fields(name) for name in names}
    varied = [parts for parts in fields.values() if parts is not None]
    common = set.intersection(*(set(parts) for parts in varied)) if varied else set()
    short = {}
    for name, parts in fields.items():
        if parts is None:
            short[name] = name
            continue
        kept = [part for part in parts if part not in common]
        short[name] = "[" + ",".join(kept) + "]" if kept else name
    return short


def _variant_fields(name: str) -> list[str] | None:
    """The `field=value` parts of a variant's name, or None for a plain name."""
    if not name.endswith("]") or "[" not in name:
        return None
    return split_values(name[name.index("[") + 1 : -1])


def _held_out_cells(score: HeldOutScore, numbers: Mapping[str, str] | None = None) -> list[str]:
    paired = score.vs_best_member
    best_tokens = score.best_member_tokens_per_question
    tokens_ratio = score.tokens_per_question / best_tokens if best_tokens else float("inf")
    return [
        score.held_out,
        str(score.rows),
        ", ".join(
            f"{kind} {(numbers or {}).get(name, name)}" for kind, name in score.chosen.items()
        ),
        f"{score.accuracy:.1%} [{score.ci_low:.1%}, {score.ci_high:.1%}]",
        f"{score.best_member_accuracy:.1%} ({score.best_member})",
        f"{paired.difference * 100:+.1f} pts (+{paired.wins}/-{paired.losses}) "
        f"p={paired.p_value:.3f}",
        f"{score.model_s_per_question:.1f} ({score.time_ratio:.2f}x)",
        f"{score.tokens_per_question:.0f} ({tokens_ratio:.1f}x)",
        f"{score.first_round_share:.0%}",
        "-" if score.in_form_share is None else f"{score.in_form_share:.0%}",
    ]


def _cells(report: Report, score: SetupScore) -> list[str]:
    best = report.best_member.get(score.dataset) == score.setup
    return [
        score.setup + (" (best member)" if best else ""),
        str(score.rows),
        _accuracy_text(score),
        _paired_text(score),
        f"{score.tokens_per_question:.0f}",
        "-" if score.cost_usd is None else f"${score.cost_usd:.4f}",
        f"{score.model_s_per_question:.1f}",
        f"{score.wall_s_per_question:.1f}",
        f"{score.first_round_share:.0%}",
        "-" if score.in_form_share is None else f"{score.in_form_share:.0%}",
        str(score.errors),
    ]


def _dataset_order(report: Report, dataset: str) -> int:
    names = [d.name for d in report.datasets]
    return names.index(dataset) if dataset in names else len(names)


def _accuracy_text(score: SetupScore) -> str:
    return f"{score.accuracy:.1%} [{score.ci_low:.1%}, {score.ci_high:.1%}]"


def _paired_text(score: SetupScore) -> str:
    paired = score.vs_best_member
    if paired is None:
        return "-"
    return (
        f"{paired.difference * 100:+.1f} pts (+{paired.wins}/-{paired.losses}) "
        f"p={paired.p_value:.3f}"
    )


_BAR_HEIGHT = 22
_LABEL_WIDTH = 230
_CHART_WIDTH = 420


def report_html(report: Report) -> str:
    """A page a person can open from disk: a chart and a table per data set."""
    sections = []
    groups = dict.fromkeys(s.dataset for s in report.scores)
    for dataset in sorted(groups, key=lambda d: _dataset_order(report, d)):
        scores = [s for s in report.scores if s.dataset == dataset]
        sections.append(
            f"<section><h2>{escape(dataset)}</h2>{_chart(report, dataset, scores)}"
            f"{_html_table(report, scores)}</section>"
        )
    created = report.created_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>conclave eval</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 2rem; font-size: 0.9rem; }}
th, td {{ padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.member {{ fill: #9aa5b1; }} .strategy {{ fill: #3b6fb6; }}
.best {{ stroke: #d98e04; stroke-width: 2; }}
.whisker {{ stroke: #222; stroke-width: 1.2; }} svg text {{ font-size: 12px; }}
</style></head><body>
<h1>conclave eval</h1>
<p>{created}. Accuracy with its 95% Wilson interval; grey bars are members alone (outlined:
the best), blue bars strategies. "Diff" is the paired difference against the best member on
the same rows, with wins/losses and the exact sign-test p-value.</p>
{_held_out_html(report.held_out) if report.held_out else ""}
{"".join(sections)}
</body></html>
"""


def _held_out_html(held_out: CrossValidation) -> str:
    numbers = _chosen_numbers(held_out)
    short = short_names(list(numbers))
    legend = "".join(f"<li>{escape(numbers[n])}: {escape(short[n])}</li>" for n in numbers)
    header = "".join(f"<th>{escape(column)}</th>" for column in _HELD_OUT_COLUMNS)
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{escape(cell)}</td>" for cell in _held_out_cells(score, numbers))
        + "</tr>"
        for score in held_out.held_out
    )
    cap = "" if held_out.time_cap is None else f" within {held_out.time_cap:g}x its time"
    pick = (
        f"the strategy set-up with the most right answers{cap}"
        if held_out.rule == "best"
        else "the cheapest strategy set-up within one standard error of the one with the most "
        f"right answers{cap}"
    )
    return (
        "<section><h2>Left out of every choice</h2><p>For each part left out "
        f"({escape(held_out.scheme)}), {pick} was "
        "chosen per kind of question on the other parts, and is scored here on the part it "
        f"never saw, against the best member alone.</p><table><tr>{header}</tr>{rows}</table>"
        f"<ul>{legend}</ul>"
        "</section>"
    )


def _chart(report: Report, dataset: str, scores: list[SetupScore]) -> str:
    height = _BAR_HEIGHT * len(scores) + 30
    width = _LABEL_WIDTH + _CHART_WIDTH + 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="accuracy on {escape(dataset)}">'
    ]
    for tick in range(0, 101, 25):
        x = _LABEL_WIDTH + _CHART_WIDTH * tick / 100
        parts.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 18}" stroke="#eee"/>'
            f'<text x="{x:.1f}" y="{height - 4}" text-anchor="middle">{tick}%</text>'
        )
    for index, score in enumerate(scores):
        y = index * _BAR_HEIGHT + 4
        bar = _CHART_WIDTH * score.accuracy
        low = _LABEL_WIDTH + _CHART_WIDTH * score.ci_low
        high = _LABEL_WIDTH + _CHART_WIDTH * score.ci_high
        middle = y + (_BAR_HEIGHT - 6) / 2
        classes = score.kind + (" best" if report.best_member.get(dataset) == score.setup else "")
        parts.append(
            f'<text x="{_LABEL_WIDTH - 6}" y="{middle + 4:.1f}" text-anchor="end">'
            f"{escape(score.setup)}</text>"
            f'<rect class="{classes}" x="{_LABEL_WIDTH}" y="{y}" width="{bar:.1f}" '
            f'height="{_BAR_HEIGHT - 6}"><title>{escape(_accuracy_text(score))}</title></rect>'
            f'<line class="whisker" x1="{low:.1f}" y1="{middle:.1f}" x2="{high:.1f}" '
            f'y2="{middle:.1f}"/>'
            f'<text x="{_LABEL_WIDTH + _CHART_WIDTH + 6}" y="{middle + 4:.1f}">'
            f"{score.accuracy:.1%}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _html_table(report: Report, scores: list[SetupScore]) -> str:
    header = "".join(f"<th>{escape(column)}</th>" for column in _COLUMNS)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in _cells(report, score)) + "</tr>"
        for score in scores
    )
    return f"<table><tr>{header}</tr>{rows}</table>"
