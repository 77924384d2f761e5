"""The terminal's view of a run shows how far the panel agrees, who decided, and what the
steps around the rounds did; the kept run's Markdown shows the same."""

from __future__ import annotations

import io

from rich.console import Console

from conclave.cli.live_view import LiveView, round_summary, with_live_view, with_progress_lines
from conclave.cli.transcript_markdown import transcript_markdown
from conclave.consensus.events import RoundFinished
from test_engine import QUESTION, make_config, make_engine
from test_run_steps import Marker, Passages, engine_for, panel_fakes
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


async def test_steps_around_the_rounds_show_in_the_progress_lines_and_the_kept_run() -> None:
    engine = engine_for(
        panel_fakes(), make_config(iterations=0), before=[Passages()], after=[Marker()]
    )
    console = Console(record=True, width=200)
    transcript = await with_progress_lines(engine.run(QUESTION, stream_aggregate=False), console)
    lines = console.export_text()
    assert "before round 1: passages started: retrieving" in lines
    assert "before round 1: passages (1 call(s)): 1 passage" in lines
    assert "round 1: marker revised the answer" in lines
    assert "consensus in 0.0s: first [marker]" in lines

    markdown = transcript_markdown(transcript)
    assert "### Before the first round" in markdown
    assert "**retriever** (passages step" in markdown
    assert "- step marker (0 call(s)): marked" in markdown
    assert "**consensus as revised by a check**:\n\n> first [marker]" in markdown
    assert markdown.endswith("### Answer\n\nfirst [marker]")


async def test_the_live_panel_on_a_terminal_ends_with_the_transcript_and_the_round_lines() -> None:
    engine = engine_for(
        panel_fakes(), make_config(iterations=0), before=[Passages()], after=[Marker()]
    )
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=160, color_system=None)
    transcript = await with_live_view(engine.run(QUESTION), terminal)
    shown = screen.getvalue()
    assert transcript.answer == "first [marker]"
    assert "before round 1: passages (1 call(s)): 1 passage" in shown
    assert "round 1: marker revised the answer" in shown
    assert "round 1 of at most 1" in shown
