"""The README and docs stay true to the code: the strategy table is the registry's, every local
link resolves, the README stays a front door, and no page or docstring dates itself."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from conclave import cli
from conclave.cli.strategies import strategy_table_markdown

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
HISTORY = re.compile(r"\bissue \d+|\b\d{1,2}:\d{2} UTC\b|before this change", re.IGNORECASE)
LINK = re.compile(r"\]\(([^)#]+)(?:#[^)]*)?\)")


def test_the_readme_strategy_table_is_the_registrys() -> None:
    assert strategy_table_markdown() in README.read_text(encoding="utf-8")
    printed = CliRunner().invoke(cli.app, ["strategies", "--markdown"])
    assert printed.exit_code == 0
    assert printed.stdout.strip() == strategy_table_markdown()


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
