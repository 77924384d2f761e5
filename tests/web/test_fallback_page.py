"""The page shows a fallback as it happens: when the aggregator fails, the round says which
call failed and why, who wrote the consensus instead, and the run's facts say who decided."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from conclave.errors import ProviderHTTPError
from conclave.providers.testing import FakeModel
from server.conftest import ServeFactory, make_config

TIMEOUT_MS = 20_000


def test_a_failed_aggregator_and_the_vote_that_answers_instead_are_shown(
    serve: ServeFactory, page: Page
) -> None:
    down = ProviderHTTPError("agg: HTTP 503 aggregator down", status_code=503)
    fakes = {
        "a": FakeModel(default="Paris."),
        "b": FakeModel(default="Paris."),
        "c": FakeModel(default="Lyon."),
        "agg": FakeModel(default=down),
    }
    served = serve(fakes=fakes, configs=[make_config(iterations=0)])
    page.goto(served.url + "/")

    page.get_by_label("Your question").fill("What is the capital of France?")
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator("#run-status")).to_have_text("done", timeout=TIMEOUT_MS)

    aggregate = page.locator('section.round[data-round="1"] .aggregate')
    expect(aggregate.locator(".fallbacks li")).to_have_text(
        "agg (aggregator) failed (http_error: agg: HTTP 503 aggregator down); a vote of the "
        "answers writes the consensus."
    )
    expect(aggregate.locator(".badge")).to_have_text("done by a vote of the answers")
    expect(aggregate.locator(".text")).to_have_text("Paris.")
    expect(page.locator("#run-facts")).to_contain_text("decided bya vote of the answers")
