"""The page in headless Chromium: a question grounded in a collection shows the answer with
its citation markers as links to the passages' text, listed under it."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from server.conftest import Served
from test_grounding_runs import TRAIN_QUESTION
from web.conftest import browser, page  # noqa: F401  (headless Chromium, as the page's tests)
from web.test_page import TIMEOUT_MS

from .test_grounded_http import grounded_server  # noqa: F401  (a server with `facts`)


def test_cited_markers_link_to_the_passage_text(
    grounded_server: Served,  # noqa: F811
    page: Page,  # noqa: F811
) -> None:
    page.goto(grounded_server.url + "/")
    page.get_by_label("Documents").fill("facts")
    page.get_by_label("Your question").fill(TRAIN_QUESTION)
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator("#run-status")).to_have_text("done", timeout=TIMEOUT_MS)

    answer = page.locator("#final-answer")
    expect(answer).to_have_text("The night train leaves London Euston at nine in the evening [1].")
    marker = answer.get_by_role("link", name="[1]")
    expect(marker).to_have_attribute("href", "#source-1")
    source = page.locator("#source-1")
    expect(source).to_contain_text("The night train to Inverness leaves London Euston")
    expect(source).to_contain_text(re.compile(r"trains\.txt, characters 0-73"))
    marker.click()
    expect(page).to_have_url(re.compile(r"#source-1$"))
    expect(source).to_be_in_viewport()


def test_an_unknown_collection_is_shown_as_an_error(
    grounded_server: Served,  # noqa: F811
    page: Page,  # noqa: F811
) -> None:
    page.goto(grounded_server.url + "/")
    page.get_by_label("Documents").fill("nope")
    page.get_by_label("Your question").fill(TRAIN_QUESTION)
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator("#error")).to_contain_text(
        "no document collection named 'nope'", timeout=TIMEOUT_MS
    )
