"""Closed by default: a server with no API keys refuses to listen beyond loopback unless its
operator says so, and answers only callers on its own machine (a caller behind a reverse
proxy is not on it); `/health` says only that the service is up to anyone else. Also the API
docs, served from files installed with the package and open to all."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx2
import pytest

from conclave.errors import ConfigError
from conclave.server import ServerSettings
from conclave.server.launch import serve, unauthenticated_refusal

from .conftest import Served, ServeFactory

KEY = "ck-test-0123456789abcdef"
BEYOND = {"X-Forwarded-For": "203.0.113.7"}
"""What a reverse proxy on this machine adds for a caller elsewhere (uvicorn trusts it from
127.0.0.1, as `conclave serve` does)."""


def settings(**values: Any) -> ServerSettings:
    return ServerSettings(_env_file=None, **values)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "conclave.example"])
def test_serving_beyond_loopback_without_keys_is_refused(host: str) -> None:
    refusal = unauthenticated_refusal(host, settings(), allowed=False)
    assert refusal is not None
    assert "CONCLAVE_API_KEYS" in refusal
    assert "--allow-unauthenticated" in refusal
    assert "CONCLAVE_ALLOW_UNAUTHENTICATED" in refusal


@pytest.mark.parametrize(
    ("host", "values", "allowed"),
    [
        ("127.0.0.1", {}, False),
        ("::1", {}, False),
        ("localhost", {}, False),
        ("0.0.0.0", {"api_keys": KEY}, False),
        ("0.0.0.0", {"allow_unauthenticated": True}, False),
        ("0.0.0.0", {}, True),
    ],
)
def test_keys_loopback_or_the_operators_word_let_it_start(
    host: str, values: dict[str, object], allowed: bool
) -> None:
    assert unauthenticated_refusal(host, settings(**values), allowed=allowed) is None


def test_conclave_serve_stops_before_listening_on_an_open_address(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CONCLAVE_API_KEYS", raising=False)
    monkeypatch.delenv("CONCLAVE_ALLOW_UNAUTHENTICATED", raising=False)
    config = tmp_path / "panel.json"
    upstream = "http://127.0.0.1:9/v1"
    config.write_text(
        json.dumps(
            {
                "models": [{"id": "a", "base_url": upstream}],
                "aggregator": [{"model": {"id": "agg", "base_url": upstream}}],
            }
        )
    )
    with pytest.raises(ConfigError, match=r"refusing to serve on 0\.0\.0\.0 with no API keys"):
        serve(host="0.0.0.0", port=9, config_paths=[config])


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCLAVE_ALLOW_UNAUTHENTICATED", "1")
    assert ServerSettings(_env_file=None).allow_unauthenticated


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/transcripts"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
        ("GET", "/metrics"),
        ("POST", "/api/routes/chat/"),
    ],
)
def test_without_keys_a_caller_beyond_this_machine_gets_nothing(
    served: Served, method: str, path: str
) -> None:
    body = {"model": "default", "messages": [{"role": "user", "content": "Hi"}]}
    response = httpx2.request(method, served.url + path, json=body, headers=BEYOND)

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "unauthenticated_access_refused"
    assert "CONCLAVE_API_KEYS" in error["message"]
    assert all(not fake.history for fake in served.fakes.values())


def test_without_keys_health_tells_a_caller_beyond_only_that_it_is_up(served: Served) -> None:
    assert httpx2.get(served.url + "/health", headers=BEYOND).json() == {"status": "ok"}
    assert "breakers" in httpx2.get(served.url + "/health").json()  # from this machine


def test_allowed_unauthenticated_access_serves_everyone(serve: ServeFactory) -> None:
    served = serve(settings=settings(allow_unauthenticated=True))
    response = httpx2.get(served.url + "/v1/transcripts", headers=BEYOND)
    assert response.status_code == 200
    assert "breakers" in httpx2.get(served.url + "/health", headers=BEYOND).json()


def test_with_keys_a_caller_beyond_needs_one_and_with_it_is_served(serve: ServeFactory) -> None:
    served = serve(settings=settings(api_keys=KEY))
    assert httpx2.get(served.url + "/v1/transcripts", headers=BEYOND).status_code == 401
    keyed = {**BEYOND, "Authorization": f"Bearer {KEY}"}
    assert httpx2.get(served.url + "/v1/transcripts", headers=keyed).status_code == 200


# --- the API docs, offline ----------------------------------------------------------------------

URL_ATTRIBUTE = re.compile(rb"""(?:src|href|url|spec-url)\s*[=:]\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_reference_no_other_host(serve: ServeFactory, page: str) -> None:
    served = serve(settings=settings(api_keys=KEY))  # the docs are open even with keys
    response = httpx2.get(served.url + page)

    assert response.status_code == 200
    html = response.content
    assert b"http://" not in html
    assert b"https://" not in html
    assert re.search(rb"""["'(]//""", html) is None  # nor a protocol-relative one
    references = URL_ATTRIBUTE.findall(html)
    assert references
    for reference in references:
        assert reference.startswith(b"/"), reference
        fetched = httpx2.get(served.url + reference.decode())
        assert fetched.status_code == 200, reference
        assert len(fetched.content) > 1000
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "http" not in policy


def test_the_schema_lets_swagger_send_a_key(serve: ServeFactory) -> None:
    served = serve(settings=settings(api_keys=KEY))
    schema = httpx2.get(served.url + "/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["security"] == [{"bearer": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []
    body = schema["paths"]["/v1/chat/completions"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[-1] in schema["components"]["schemas"]


def test_without_keys_the_schema_asks_for_none(served: Served) -> None:
    schema = httpx2.get(served.url + "/openapi.json").json()
    assert "security" not in schema
    assert "securitySchemes" not in schema["components"]
