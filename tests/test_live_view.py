"""The terminal's live view shows how far the panel agrees."""

from __future__ import annotations

from rich.console import Console

from conclave.cli.live_view import LiveView, round_summary
from conclave.consensus.events import RoundFinished
from test_engine import make_engine
from test_strategies import CHOICE, answers, weighted


async def test_the_live_view_and_round_lines_show_agreement_and_who_decided() -> None:
    engine = make_engine(
        weighted({"a": 1, "b": 1, "c": 1}, "vote", iterations=0), answers(a="B", b="B", c="A")
    )
    view = LiveView()
    lines = []
    async for event in engine.run(CHOICE):
        view.apply(event)
        if isinstance(event, RoundFinished):
            lines.append(round_summary(event.record))
    console = Console(record=True, width=200)
    console.print(view.render())
    shown = console.export_text()
    assert "agreement 67% · backed by a, b · confidence 67%" in shown
    assert "answers: B x2 / A x1" in shown
    assert "(decided by vote)" in lines[0]
