"""The README and docs stay true to the code: the strategy table is the registry's, every local
link resolves, the README stays a front door, and no page or docstring dates itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
HISTORY = re.compile(r"\bissue \d+|\b\d{1,2}:\d{2} UTC\b|before this change", re.IGNORECASE)
LINK = re.compile(r"\]\(([^)#]+)(?:#[^)]*)?\)")


def test_the_readme_strategy_table_is_the_one_conclave_strategies_prints() -> None:
    """In a process of its own: the strategies conclave ships, not those tests register."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    printed = subprocess.run(
        [sys.executable, "-m", "conclave.cli", "strategies", "--markdown"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    table = printed.stdout.strip()
    assert table.startswith("| strategy | how the panel agrees |")
    assert table in README.read_text(encoding="utf-8")


def test_the_readme_is_a_front_door() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 260


def test_every_local_link_of_the_readme_and_docs_resolves() -> None:
    broken = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in PAGES
        for target in LINK.findall(page.read_text(encoding="utf-8"))
        if "://" not in target and not (page.parent / target).exists()
    ]
    assert broken == []


def test_no_page_docstring_or_comment_dates_itself() -> None:
    sources = [*PAGES, *sorted((ROOT / "src").rglob("*.py"))]
    dated = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if HISTORY.search(line)
    ]
    assert dated == []
