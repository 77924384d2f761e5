"""LauncherClient against a fake launcher serving HTTP on a Unix socket."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from conclave.attestation import AttestationPolicy, LauncherClient, verify_token
from conclave.errors import AttestationRequestError, ConfigError, LauncherError

from .attestation_fakes import AUDIENCE, NONCE, FakeGoogle, FakeLauncher


def client(launcher: FakeLauncher, timeout_s: float = 5.0) -> LauncherClient:
    return LauncherClient(launcher.socket_path, timeout_s=timeout_s)


async def test_the_request_is_the_launchers_contract(launcher: FakeLauncher) -> None:
    token = await client(launcher).request_token(AUDIENCE, [NONCE], "PKI")

    assert launcher.requests == [
        ("POST", "/v1/token", {"audience": AUDIENCE, "token_type": "PKI", "nonces": [NONCE]})
    ]
    assert token.reveal() == launcher.issued[0]
    assert (token.token_type, token.audience) == ("PKI", AUDIENCE)


async def test_the_token_answered_verifies(launcher: FakeLauncher, google: FakeGoogle) -> None:
    token = await client(launcher).request_token(AUDIENCE, [NONCE])

    report = verify_token(
        token, AttestationPolicy(audience=AUDIENCE), google.trust, expected_nonce=NONCE
    )

    assert report.ok, report.render()


async def test_the_socket_is_closed_after_a_token(launcher: FakeLauncher) -> None:
    await client(launcher).request_token(AUDIENCE, [NONCE])

    assert await launcher.wait_closed()


async def test_a_chunked_answer_is_read_whole(launcher: FakeLauncher) -> None:
    launcher.behaviour = "chunked"

    token = await client(launcher).request_token(AUDIENCE, [NONCE], "PKI")

    assert token.reveal() == launcher.issued[0]
    assert len(token.reveal()) > 700  # more than one chunk


@pytest.mark.parametrize("nonce", ["n" * 10, "n" * 74, "é" * 5, "é" * 37])
async def test_nonces_of_10_to_74_bytes_are_sent(launcher: FakeLauncher, nonce: str) -> None:
    await client(launcher).request_token(AUDIENCE, [nonce])

    assert launcher.requests[0][2]["nonces"] == [nonce]


@pytest.mark.parametrize(
    ("nonces", "message"),
    [
        (["n" * 9], "nonce #1 is 9 bytes"),
        ([NONCE, "n" * 75], "nonce #2 is 75 bytes"),
        (["é" * 38], "is 76 bytes"),  # 38 characters, 76 bytes of UTF-8
        ([""], "is 0 bytes"),
        ([NONCE] * 7, "at most 6 nonces"),
    ],
)
async def test_bad_nonces_are_refused_before_anything_is_sent(
    launcher: FakeLauncher, nonces: list[str], message: str
) -> None:
    with pytest.raises(AttestationRequestError, match=message) as raised:
        await client(launcher).request_token(AUDIENCE, nonces)

    assert isinstance(raised.value, ConfigError)
    assert "10-74 bytes" in str(raised.value) or "at most" in str(raised.value)
    assert launcher.requests == []
    assert launcher.connections == 0


async def test_a_single_string_is_not_taken_for_a_list_of_nonces(launcher: FakeLauncher) -> None:
    with pytest.raises(AttestationRequestError, match="not one string"):
        await client(launcher).request_token(AUDIENCE, NONCE)


@pytest.mark.parametrize(
    ("audience", "token_type", "message"),
    [("", "OIDC", "audience"), ("a" * 513, "OIDC", "audience"), (AUDIENCE, "JWT", "token_type")],
)
async def test_a_bad_audience_or_token_type_is_refused(
    launcher: FakeLauncher, audience: str, token_type: str, message: str
) -> None:
    with pytest.raises(AttestationRequestError, match=message):
        await client(launcher).request_token(audience, [NONCE], token_type)  # type: ignore[arg-type]
    assert launcher.requests == []


async def test_a_silent_launcher_times_out_and_the_socket_is_closed(
    launcher: FakeLauncher,
) -> None:
    launcher.behaviour = "hang"
    started = time.monotonic()

    with pytest.raises(LauncherError, match=r"did not answer within 0\.3 s"):
        await client(launcher, timeout_s=0.3).request_token(AUDIENCE, [NONCE])

    assert time.monotonic() - started < 3
    assert launcher.requests  # it did reach the launcher
    assert await launcher.wait_closed()


async def test_an_error_answer_is_a_launcher_error_and_the_socket_is_closed(
    launcher: FakeLauncher,
) -> None:
    launcher.behaviour = "error"
    launcher.error_body = "failed to parse POST body as TokenOptions"

    with pytest.raises(LauncherError, match="HTTP 400: failed to parse") as raised:
        await client(launcher).request_token(AUDIENCE, [NONCE])

    assert raised.value.status_code == 400
    assert await launcher.wait_closed()


async def test_an_answer_that_is_not_a_token_is_refused(launcher: FakeLauncher) -> None:
    launcher.behaviour = "garbage"

    with pytest.raises(LauncherError, match="not a token"):
        await client(launcher).request_token(AUDIENCE, [NONCE])
    assert await launcher.wait_closed()


async def test_a_missing_launcher_says_where_it_looked(tmp_path: Path) -> None:
    missing = str(tmp_path / "teeserver.sock")

    with pytest.raises(LauncherError, match="cannot reach the Confidential Space launcher"):
        await LauncherClient(missing, timeout_s=1).request_token(AUDIENCE, [NONCE])


async def test_the_token_never_reaches_logs_reprs_or_errors(
    launcher: FakeLauncher, google: FakeGoogle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    token = await client(launcher).request_token(AUDIENCE, [NONCE])
    value = token.reveal()
    # A launcher that echoes a token in its error body must not put it in our error either.
    launcher.behaviour = "error"
    launcher.error_body = f"upstream refused {value}"
    with pytest.raises(LauncherError) as raised:
        await client(launcher).request_token(AUDIENCE, [NONCE])

    assert "obtained a OIDC attestation token" in caplog.text  # the log did run
    signature = value.split(".")[2]
    for text in (caplog.text, repr(token), str(token), str(raised.value), repr(raised.value)):
        assert value not in text
        assert value[:40] not in text  # not even the head of it
        assert signature not in text
    assert "<redacted token>" in str(raised.value)
    assert "redacted" in repr(token)


def test_a_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        LauncherClient(timeout_s=0)
