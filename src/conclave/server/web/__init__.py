"""The page at `/`: ask the consensus and watch it happen, browse the history, download
receipts. Static files served by the app itself (no CDN, no build step): `static/index.html`,
`app.js` and `style.css`. The page calls the same API as any client, with the key typed into
it (kept in the tab's sessionStorage, sent as a Bearer header), so the files themselves are
served without a key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

STATIC_DIR = Path(__file__).parent / "static"

_ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

WEB_PATHS = ("/", *(f"/web/{name}" for name in _ASSETS))
"""The page's own paths: open without an API key (they hold no data)."""

_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Only this origin's script, style and API: no inline code, nothing from elsewhere.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


def web_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def page() -> Response:
        return FileResponse(
            STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=_HEADERS
        )

    for name, media_type in _ASSETS.items():
        router.add_api_route(f"/web/{name}", _asset(name, media_type), methods=["GET"])
    return router


def _asset(name: str, media_type: str) -> Callable[[], Awaitable[Response]]:
    path = STATIC_DIR / name

    async def asset() -> Response:
        return FileResponse(path, media_type=media_type, headers=_HEADERS)

    asset.__name__ = f"web_{name.replace('.', '_')}"
    return asset
