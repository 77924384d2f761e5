"""The page at `/` in a real browser: a question asked against scripted members shows every
member's answer in every round, the failing member as failed, and the final answer; the
conversation goes on; the receipt downloads with its verification; the history survives a
server restart; a server with API keys is used with the key typed into the page."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from playwright.sync_api import Locator, Page, expect
from pydantic import SecretStr

from conclave.errors import ProviderHTTPError
from conclave.providers.testing import FakeModel, FunctionModel
from conclave.server import ServerSettings
from conclave.types import Message, SamplingOptions
from server.conftest import Fakes, ServeFactory, make_config

FINAL = "The capital of France is Paris."
TIMEOUT_MS = 20_000


def scripted_members() -> Fakes:
    """a and c answer (a little slowly, as models do), b always fails, agg aggregates."""

    def aggregate(messages: Sequence[Message], options: SamplingOptions) -> str:
        asked_about_germany = any("Germany" in message.content for message in messages)
        return "Berlin, on the Spree." if asked_about_germany else FINAL

    return {
        "a": FakeModel(default="Paris.", latency_s=0.2),
        "b": FakeModel(default=ProviderHTTPError("b: HTTP 503 upstream down", status_code=503)),
        "c": FakeModel(default="Paris, on the Seine.", latency_s=0.3),
        "agg": FunctionModel(aggregate, latency_s=0.1),
    }


def ask(page: Page, question: str, *, outcome: str = "done") -> None:
    page.get_by_label("Your question").fill(question)
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator("#run-status")).to_have_text(outcome, timeout=TIMEOUT_MS)


def member(page: Page, round_number: int, name: str) -> Locator:
    return page.locator(f'section.round[data-round="{round_number}"] article[data-member="{name}"]')


def test_a_question_shows_every_member_round_failure_and_the_final_answer(
    serve: ServeFactory, page: Page
) -> None:
    served = serve(fakes=scripted_members())
    page.goto(served.url + "/")
    expect(page.get_by_label("Preset")).to_have_value("default")

    ask(page, "What is the capital of France?")

    rounds = page.locator("section.round")
    expect(rounds).to_have_count(2)  # the panel's round and one improvement round
    for round_number in (1, 2):
        section = page.locator(f'section.round[data-round="{round_number}"]')
        a = section.locator('article[data-member="a"]')
        c = section.locator('article[data-member="c"]')
        b = section.locator('article[data-member="b"]')
        expect(a.locator(".badge")).to_have_text("answered")
        expect(a.locator(".text")).to_have_text("Paris.")
        expect(c.locator(".text")).to_have_text("Paris, on the Seine.")
        expect(b).to_have_class(re.compile(r"\bfailed\b"))
        expect(b.locator(".badge")).to_have_text("failed")
        expect(b.locator(".text")).to_contain_text("HTTP 503 upstream down")
        expect(section.locator(".aggregate .text")).to_have_text(FINAL)
    expect(page.locator("#final-answer")).to_have_text(FINAL)
    expect(page.locator("#run-facts")).to_contain_text("8 (2 failed)")

    expect(page.locator("#receipt-status")).to_have_text("verified", timeout=TIMEOUT_MS)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download receipt").click()
    bundle = json.loads(Path(download.value.path()).read_text())
    assert bundle["format"] == "conclave.receipt-bundle"
    assert bundle["transcript"]["answer"] == FINAL

    history = page.locator("#history-list")
    expect(history).to_contain_text("What is the capital of France?")


def test_the_conversation_goes_on_turn_after_turn(serve: ServeFactory, page: Page) -> None:
    fakes = scripted_members()
    served = serve(fakes=fakes)
    page.goto(served.url + "/")
    ask(page, "What is the capital of France?")
    ask(page, "And of Germany?")

    turns = page.locator("#conversation .turn")
    expect(turns).to_have_count(4)
    expect(turns.nth(0)).to_contain_text("What is the capital of France?")
    expect(turns.nth(1)).to_contain_text(FINAL)
    expect(turns.nth(2)).to_contain_text("And of Germany?")
    expect(page.locator("#final-answer")).to_have_text("Berlin, on the Spree.")
    last_call = fakes["a"].history[-1].messages
    assert [m.role for m in last_call][:3] == ["user", "assistant", "user"]
    expect(page.locator("#history-list")).to_contain_text("turn 2")


def test_the_history_survives_a_server_restart(serve: ServeFactory, page: Page) -> None:
    first = serve(fakes=scripted_members())
    page.goto(first.url + "/")
    ask(page, "What is the capital of France?")
    first.stop()

    second = serve(fakes=scripted_members())  # the same SQLite file
    page.goto(second.url + "/")
    entry = page.locator("#history-list button", has_text="What is the capital of France?")
    expect(entry).to_have_count(1)
    entry.click()
    expect(page.locator("#final-answer")).to_have_text(FINAL)
    expect(member(page, 1, "b")).to_have_class(re.compile(r"\bfailed\b"))
    expect(page.locator("#conversation .turn")).to_have_count(2)


def test_a_server_with_api_keys_is_used_with_the_key_typed_into_the_page(
    serve: ServeFactory, page: Page
) -> None:
    key = "page-test-key-123"
    settings = ServerSettings(api_keys=(SecretStr(key),), _env_file=None)
    served = serve(fakes=scripted_members(), configs=[make_config()], settings=settings)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(served.url + "/")
    expect(page.locator("#error")).to_contain_text("API key")

    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Use key").click()
    expect(page.get_by_label("Preset")).to_have_value("default")
    ask(page, "What is the capital of France?")
    expect(page.locator("#final-answer")).to_have_text(FINAL)
    assert page.evaluate("sessionStorage.getItem('conclave.apiKey')") == key
    assert requested
    assert not [url for url in requested if key in url]


def fact(page: Page, name: str) -> Locator:
    return page.locator("#run-facts div", has=page.locator("dt", has_text=name)).locator("dd")


def test_the_page_shows_the_agreement_and_runs_the_chosen_strategy(
    serve: ServeFactory, page: Page
) -> None:
    fakes = scripted_members()
    served = serve(fakes=fakes)
    page.goto(served.url + "/")
    ask(page, "What is the capital of France?")
    expect(fact(page, "strategy")).to_have_text("flare")
    expect(fact(page, "supporters")).to_have_text("a, c")  # b failed: it backs nothing
    expect(fact(page, "agreement")).to_have_text(re.compile(r"^[01]\.\d\d$"))
    expect(fact(page, "confidence")).to_have_text(re.compile(r"^[01]\.\d\d$"))
    aggregations = len(fakes["agg"].history)

    strategy = page.get_by_label("Strategy")
    expect(strategy.locator("option")).to_have_text(
        ["flare (the preset's)", "vote", "rank", "sample", "adaptive", "swarm"]
    )
    strategy.select_option("vote")
    with page.expect_request("**/v1/consensus/stream") as sent:
        ask(page, "What is the capital of France?")
    assert (sent.value.post_data_json or {})["model"] == "default:vote"
    expect(fact(page, "strategy")).to_have_text("vote")
    expect(page.locator("#final-answer")).to_have_text(re.compile(r"^Paris"))
    assert len(fakes["agg"].history) == aggregations  # a vote needs no aggregator


def test_screenshots_for_the_readme(serve: ServeFactory, page: Page) -> None:
    """Writes the README's screenshots when CONCLAVE_SCREENSHOTS names a folder."""
    folder = os.environ.get("CONCLAVE_SCREENSHOTS")
    served = serve(fakes=scripted_members())
    page.goto(served.url + "/")
    ask(page, "What is the capital of France?")
    expect(page.locator("#receipt-status")).to_have_text("verified", timeout=TIMEOUT_MS)
    if folder:
        page.screenshot(path=str(Path(folder) / "page-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.locator("#final-answer")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than a phone's screen
    if folder:
        page.screenshot(path=str(Path(folder) / "page-phone.png"), full_page=True)


def test_the_page_works_from_the_keyboard_and_labels_every_control(
    serve: ServeFactory, page: Page
) -> None:
    served = serve(fakes=scripted_members())
    page.goto(served.url + "/")
    expect(page.get_by_label("Preset")).to_have_value("default")
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input, select, textarea')]
             .filter((control) => !control.labels || control.labels.length === 0)
             .map((control) => control.id)"""
    )
    assert unlabelled == []

    page.keyboard.press("Tab")  # the first stop: "Skip to the question"
    page.keyboard.press("Enter")
    page.keyboard.type("What is the capital of France?")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#run-status")).to_have_text("done", timeout=TIMEOUT_MS)
    expect(page.locator("#final-answer")).to_have_text(FINAL)


def test_a_run_that_fails_says_why_and_is_kept(serve: ServeFactory, page: Page) -> None:
    down = ProviderHTTPError("HTTP 503 upstream down", status_code=503)
    fakes: Fakes = {name: FakeModel(default=down) for name in ("a", "b", "c")}
    fakes["agg"] = FakeModel(default=FINAL)
    served = serve(fakes=fakes)
    page.goto(served.url + "/")
    ask(page, "What is the capital of France?", outcome="failed")
    error = page.get_by_role("alert")
    expect(error).to_contain_text("a (round 1) failed: http_error")
    expect(error).to_contain_text("c (round 1) failed")
    for name in ("a", "b", "c"):
        expect(member(page, 1, name).locator(".badge")).to_have_text("failed")
    expect(page.locator("#history-list")).to_contain_text("failed")
