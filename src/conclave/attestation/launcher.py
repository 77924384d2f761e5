"""The Confidential Space launcher's token endpoint, reached over its Unix socket.

Inside a Confidential Space VM the launcher serves HTTP on `/run/container_launcher/teeserver.sock`
(mounted into the workload container). `POST /v1/token` with the JSON body
`{"audience": ..., "token_type": "OIDC" | "PKI", "nonces": [...]}` answers the signed token as the
plain response body. The launcher forwards the request to Google Cloud Attestation, which echoes
the audience in `aud` and the nonces in `eat_nonce`.

Every request opens its own connection and closes it on every path (success, error, timeout,
cancellation). The token is never logged, and no error message holds it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

import httpx2

from conclave.attestation.claims import TokenType
from conclave.attestation.token import (
    AttestationToken,
    check_token_request,
    looks_like_jwt,
    redact_tokens,
)
from conclave.errors import LauncherError

logger = logging.getLogger(__name__)

DEFAULT_SOCKET_PATH: Final = "/run/container_launcher/teeserver.sock"
TOKEN_ENDPOINT: Final = "/v1/token"
_MAX_ERROR_CHARS: Final = 300


class LauncherClient:
    """Asks the Confidential Space launcher for attestation tokens."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET_PATH, *, timeout_s: float = 10.0) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.socket_path = socket_path
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"LauncherClient(socket_path={self.socket_path!r}, timeout_s={self.timeout_s})"

    async def request_token(
        self, audience: str, nonces: Sequence[str] = (), token_type: TokenType = "OIDC"
    ) -> AttestationToken:
        """A token for `audience` whose `eat_nonce` holds `nonces`.

        Raises `AttestationRequestError` for a request the launcher would refuse (a nonce outside
        10-74 bytes, more than six nonces, a bad audience or token type) before anything is
        sent, and `LauncherError` when the launcher is absent, slow (over `timeout_s` in all)
        or answers an error.
        """
        checked_type = check_token_request(audience, nonces, token_type)
        body: dict[str, str | list[str]] = {
            "audience": audience,
            "token_type": checked_type,
            "nonces": list(nonces),
        }
        logger.debug(
            "requesting a %s attestation token for %r with %d nonce(s)",
            checked_type,
            audience,
            len(nonces),
        )
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._post(body)
        except TimeoutError:
            raise LauncherError(
                f"the launcher at {self.socket_path} did not answer within {self.timeout_s} s"
            ) from None
        if response.status_code != 200:
            # Redact first: a cut could leave a token's head that no longer looks like one.
            detail = redact_tokens(response.text)[:_MAX_ERROR_CHARS].strip()
            raise LauncherError(
                f"the launcher refused the token request: HTTP {response.status_code}: {detail}",
                status_code=response.status_code,
            )
        value = response.text.strip()
        if not looks_like_jwt(value):
            raise LauncherError("the launcher answered HTTP 200 with a body that is not a token")
        logger.info("obtained a %s attestation token for %r", checked_type, audience)
        return AttestationToken(value, token_type=checked_type, audience=audience)

    async def _post(self, body: dict[str, str | list[str]]) -> httpx2.Response:
        transport = httpx2.AsyncHTTPTransport(uds=self.socket_path)
        timeout = httpx2.Timeout(self.timeout_s)
        try:
            # The client owns the transport: leaving the block closes the socket, whatever
            # happened inside it (an error, a timeout, a cancellation).
            async with httpx2.AsyncClient(
                transport=transport, timeout=timeout, base_url="http://localhost"
            ) as client:
                response = await client.post(TOKEN_ENDPOINT, json=body)
                await response.aread()
                return response
        except httpx2.TimeoutException:
            raise TimeoutError from None
        except httpx2.ConnectError as exc:
            raise LauncherError(
                f"cannot reach the Confidential Space launcher at {self.socket_path} "
                f"({_reason(exc)}): is this running in a Confidential Space VM?"
            ) from None
        except httpx2.HTTPError as exc:
            raise LauncherError(
                f"the token request to the launcher at {self.socket_path} failed: {_reason(exc)}"
            ) from None


def _reason(exc: BaseException) -> str:
    return redact_tokens(str(exc)) or type(exc).__name__
