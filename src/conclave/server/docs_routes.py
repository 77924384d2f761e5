"""The API's documentation pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), from assets that
are installed with the package (the copies of Swagger UI and ReDoc that `fastapi-offline`
ships, MIT and Apache-2.0 licensed), so they work on a machine with no internet.

Each page is sent with a Content-Security-Policy that allows nothing from another host.
The pages and their assets hold no data and are open without an API key; Swagger UI's
"Authorize" button takes the key for the requests it sends (the schema declares the bearer
scheme).
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse, Response

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
OPENAPI_PATH = "/openapi.json"
ASSETS_PREFIX = "/docs/assets/"

_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}

DOCS_PATHS = (
    DOCS_PATH,
    REDOC_PATH,
    OPENAPI_PATH,
    *(ASSETS_PREFIX + name for name in _ASSETS),
)
"""The documentation's own paths: open without an API key (they hold no data)."""


def assets_dir() -> Path:
    """Where the installed Swagger UI and ReDoc files are."""
    return Path(str(resources.files("fastapi_offline") / "static"))


def docs_router(title: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    favicon = ASSETS_PREFIX + "favicon.png"
    swagger = bytes(
        get_swagger_ui_html(
            openapi_url=OPENAPI_PATH,
            title=f"{title} - Swagger UI",
            swagger_js_url=ASSETS_PREFIX + "swagger-ui-bundle.js",
            swagger_css_url=ASSETS_PREFIX + "swagger-ui.css",
            swagger_favicon_url=favicon,
            # Swagger UI would otherwise show a badge from an online validator.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
        ).body
    )
    redoc = get_redoc_html(
        openapi_url=OPENAPI_PATH,
        title=f"{title} - ReDoc",
        redoc_js_url=ASSETS_PREFIX + "redoc.standalone.js",
        redoc_favicon_url=favicon,
        with_google_fonts=False,
    ).body
    swagger_headers = _headers(_inline_script_hashes(swagger))
    redoc_headers = _headers(())

    @router.get(DOCS_PATH)
    async def swagger_ui() -> Response:
        return HTMLResponse(swagger, headers=swagger_headers)

    @router.get(REDOC_PATH)
    async def redoc_page() -> Response:
        return HTMLResponse(redoc, headers=redoc_headers)

    directory = assets_dir()

    @router.get(ASSETS_PREFIX + "{name}")
    async def asset(name: str) -> Response:
        media_type = _ASSETS.get(name)
        if media_type is None:
            return Response(status_code=404)
        return FileResponse(
            directory / name,
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
        )

    return router


def _inline_script_hashes(html: bytes) -> tuple[str, ...]:
    """The CSP hashes of a page's inline scripts (Swagger UI's is its set-up call)."""
    scripts = re.findall(rb"<script>(.*?)</script>", html, flags=re.DOTALL)
    return tuple(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in scripts
    )


def _headers(script_hashes: tuple[str, ...]) -> dict[str, str]:
    scripts = " ".join(("'self'", *script_hashes))
    return {
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # This origin only: no script, style, font or image from any other host. ReDoc sets
        # styles inline and runs its search in a worker made from a blob.
        "Content-Security-Policy": (
            f"default-src 'none'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
    }
