"""A swarm run on the page, in headless Chromium: the plan as a list of steps with what each
depends on, each step's status as it goes (the failed one and the one skipped because of it
marked so), the final answer; and the same plan when the run is opened from the history."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from server.conftest import ServeFactory, make_config
from swarm_fakes import AGENTS, FINAL, swarm_fakes
from web.test_page import TIMEOUT_MS, ask


def test_a_swarm_run_shows_its_plan_and_every_steps_status(serve: ServeFactory, page: Page) -> None:
    config = make_config(
        ("a", "b"), name="swarm", strategy="swarm", strategy_options={"agents": AGENTS}
    )
    served = serve(fakes=swarm_fakes(latency_s=0.2), configs=[config])
    page.goto(served.url + "/")

    ask(page, "Part 1: 6 * 7?\nPart 2: Capital of Peru?\nPart 3: Add 1 to part 1.")

    plan = page.locator(".plan-view")
    expect(plan).to_contain_text("3 steps")
    steps = plan.locator("li.plan-step")
    expect(steps).to_have_count(3)
    first, second, third = (plan.locator(f'li[data-step="{n}"]') for n in (1, 2, 3))
    expect(first.locator(".name")).to_have_text("Step 1 · math")
    expect(first.locator(".badge")).to_have_text("done")
    expect(first.locator(".text")).to_contain_text("42")
    expect(second.locator(".badge")).to_have_text("failed")
    expect(second).to_have_class(re.compile(r"\bfailed\b"))
    expect(second.locator(".text")).to_contain_text("HTTP 503 upstream down")
    expect(third.locator(".name")).to_have_text("Step 3 · math · uses step 1")
    expect(third.locator(".instruction")).to_have_text("Add 1 to step 1.")
    expect(third.locator(".badge")).to_have_text("done")
    expect(page.locator("#final-answer")).to_have_text(FINAL)
    folder = os.environ.get("CONCLAVE_SCREENSHOTS")
    if folder:  # docs/swarm.md's picture
        page.locator("#run").screenshot(path=str(Path(folder) / "swarm-page.png"))

    # the same run from the history, after a reload
    page.reload()
    page.locator("#history-list button").first.click()
    expect(page.locator("#run-status")).to_contain_text("from history", timeout=TIMEOUT_MS)
    reopened = page.locator(".plan-view li.plan-step")
    expect(reopened).to_have_count(3)
    expect(reopened.nth(1).locator(".badge")).to_have_text("failed")
    expect(page.locator("#final-answer")).to_have_text(FINAL)
