"""The API docs in a real browser with no way out: every request to a host other than the
server is cut, as on a machine without internet, and Swagger UI and ReDoc still render the
API from the files installed with the package."""

from __future__ import annotations

from playwright.sync_api import Page, Route, expect

from server.conftest import ServeFactory

TIMEOUT_MS = 20_000


def offline(page: Page, origin: str) -> list[str]:
    """Cut every request that leaves `origin`; returns the list of those cut."""
    cut: list[str] = []

    def route(handled: Route) -> None:
        if handled.request.url.startswith(origin):
            handled.continue_()
        else:
            cut.append(handled.request.url)
            handled.abort()

    page.route("**/*", route)
    return cut


def test_swagger_ui_renders_offline(page: Page, serve: ServeFactory) -> None:
    served = serve()
    cut = offline(page, served.url)

    page.goto(served.url + "/docs")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("conclave", timeout=TIMEOUT_MS)
    expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=TIMEOUT_MS)
    assert page.get_by_text("/v1/chat/completions").first.is_visible()
    assert cut == []


def test_redoc_renders_offline(page: Page, serve: ServeFactory) -> None:
    served = serve()
    cut = offline(page, served.url)

    page.goto(served.url + "/redoc")

    expect(page.locator("h1").first).to_contain_text("conclave", timeout=TIMEOUT_MS)
    expect(page.get_by_text("Chat completion by consensus").first).to_be_attached(
        timeout=TIMEOUT_MS
    )
    assert cut == []
