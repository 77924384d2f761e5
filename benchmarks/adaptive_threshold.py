"""What `adaptive`'s `sure_probability` trades: accuracy and tokens at lower thresholds, replayed
from one `conclave eval` run (no model call).

A lower threshold only stops some runs at their first answer and changes nothing after it, so
the run's own transcripts give each lower threshold's result exactly (a higher one would need
calls the run did not make). Printed per threshold: questions escalated, accuracy, the paired
difference with the best member, tokens per question and their ratio to the best member's.

    .venv/bin/python benchmarks/adaptive_threshold.py eval-out data/devsets/mmlu.jsonl \\
        data/devsets/arithmetic.jsonl data/devsets/capitals.jsonl data/devsets/elements.jsonl
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from conclave.config import parse_config
from conclave.consensus.strategies.adaptive import AdaptiveOptions
from conclave.evaluation.dataset import EvalRow, load_dataset
from conclave.evaluation.evaluate import (
    RESULTS_FILE,
    TRANSCRIPTS_FILE,
    RowResult,
    TranscriptEntry,
    result_key,
)
from conclave.evaluation.runner import ResultLog
from conclave.evaluation.scoring import Scorers


@dataclass(frozen=True)
class Replay:
    """One question as `adaptive` ran it, and as its best member alone answered it."""

    probability: float | None
    unreadable_first: bool
    """Escalated although sure enough: its first answer could not be read (it would be at any
    threshold)."""
    first_correct: bool
    first_tokens: int
    final_correct: bool
    final_tokens: int
    best_correct: bool
    best_tokens: int


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the `conclave eval` output directory")
    parser.add_argument("data", type=Path, nargs="+", help="the data sets of that run")
    parser.add_argument("--setup", default="adaptive", help="the adaptive set-up's name")
    parser.add_argument("--best", default="local:qwen2.5-1.5b", help="the best member's set-up")
    parser.add_argument(
        "--thresholds", default="0,0.2,0.3,0.35,0.4,0.45,0.5", help="comma-separated values"
    )
    args = parser.parse_args()

    rows = {row.id: row for path in args.data for row in load_dataset(path).rows}
    replays = replay(args.out, rows, args.setup, args.best)
    if not replays:
        raise SystemExit(f"no {args.setup!r} transcripts with a {args.best!r} answer in {args.out}")
    count = len(replays)
    best = sum(r.best_correct for r in replays)
    best_tokens = sum(r.best_tokens for r in replays) / count
    print(f"{count} questions; {args.best} alone: {best / count:.1%}, {best_tokens:.0f} tokens/q")
    print("sure_probability  escalated  accuracy  vs best (won/lost)  tokens/q")
    for threshold in (float(value) for value in args.thresholds.split(",")):
        correct = tokens = escalated = won = lost = 0
        for r in replays:  # 0 stands for "always the first answer"
            sure = r.probability is not None and r.probability >= threshold
            stops = threshold == 0.0 or (sure and not r.unreadable_first)
            right = r.first_correct if stops else r.final_correct
            tokens += r.first_tokens if stops else r.final_tokens
            escalated += not stops
            correct += right
            won += right and not r.best_correct
            lost += r.best_correct and not right
        print(
            f"{threshold:>16}  {escalated:>9}  {correct / count:>8.1%}  "
            f"{(correct - best) / count * 100:+5.1f} pts (+{won}/-{lost})  "
            f"{tokens / count:>5.0f} ({tokens / count / best_tokens:.1f}x)"
        )


def replay(out: Path, rows: dict[str, EvalRow], setup: str, best: str) -> list[Replay]:
    """Every question of `setup` in the run, with the answer of `best` to the same row."""
    results = {
        (result.row_id, result.setup): result
        for result in ResultLog(out / RESULTS_FILE, RowResult, key=lambda r: r.key).load().values()
    }
    entries = ResultLog(
        out / TRANSCRIPTS_FILE,
        TranscriptEntry,
        key=lambda t: result_key(t.dataset, t.row_id, t.setup),
    ).load()
    replays = []
    for entry in entries.values():
        key = (entry.row_id, setup)
        if entry.setup != setup or key not in results or (key[0], best) not in results:
            continue
        row = rows[entry.row_id]
        transcript = entry.transcript
        first_round = transcript.rounds[0]
        first = first_round.responses[0]
        final, alone = results[key], results[(key[0], best)]
        consensus = first_round.aggregate.text if first_round.aggregate else ""
        probability = first.token_probability
        options = parse_config(transcript.config).options
        assert isinstance(options, AdaptiveOptions), "the run was not adaptive's"
        ran_at = options.sure_probability
        sure = probability is not None and probability >= ran_at
        replays.append(
            Replay(
                probability=probability,
                unreadable_first=sure and len(transcript.rounds) > 1,
                first_correct=Scorers().score(consensus, row),
                first_tokens=first.usage.total_tokens,
                final_correct=final.correct,
                final_tokens=final.prompt_tokens + final.completion_tokens,
                best_correct=alone.correct,
                best_tokens=alone.prompt_tokens + alone.completion_tokens,
            )
        )
    return replays


if __name__ == "__main__":
    main()
