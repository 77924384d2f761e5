"""Running `conclave batch` as a user does: a process of its own, on this checkout's code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conclave.batch import BatchResult

SRC = Path(__file__).resolve().parents[2] / "src"
WAIT_S = 180.0


def conclave(*args: str) -> list[str]:
    return [sys.executable, "-m", "conclave.cli", *args]


def environment() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def run_batch(*args: str) -> subprocess.CompletedProcess[str]:
    """`conclave batch ARGS` to its end, its output captured."""
    return subprocess.run(
        conclave("batch", *args), env=environment(), capture_output=True, text=True, timeout=WAIT_S
    )


def complete_lines(path: Path) -> list[BatchResult]:
    """The result rows whose line is finished (a killed run may leave a torn last line)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    whole = text[: text.rfind("\n") + 1]
    return [BatchResult.model_validate_json(line) for line in whole.splitlines()]
