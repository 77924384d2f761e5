"""An attestation token that keeps itself out of logs, and the rules for asking for one.

A Confidential Space token is a bearer credential for whoever trusts its audience, so conclave
never writes one where it could leak by accident: `AttestationToken` shows only its type, its
audience and its length in `repr`/`str`; `reveal()` is the one way to get the JWT text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from conclave.attestation.claims import TokenType
from conclave.errors import AttestationRequestError

MIN_NONCE_BYTES: Final = 10
MAX_NONCE_BYTES: Final = 74
MAX_NONCES: Final = 6
MAX_AUDIENCE_BYTES: Final = 512
TOKEN_TYPES: Final[tuple[TokenType, ...]] = ("OIDC", "PKI")

_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# A whole JWT, or any part of one: base64url JSON objects start with "eyJ" ('{"').
_JWT_INSIDE_TEXT = re.compile(
    r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*|eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)*"
)


class AttestationToken:
    """A signed attestation token (a compact JWS), with the request it answered."""

    __slots__ = ("_value", "audience", "token_type")

    def __init__(self, value: str, *, token_type: TokenType, audience: str) -> None:
        if not looks_like_jwt(value):
            raise ValueError("an attestation token is a compact JWS: three dot-separated parts")
        self._value = value
        self.token_type: TokenType = token_type
        self.audience = audience

    def reveal(self) -> str:
        """The JWT text itself. Hand it to a verifier or a receipt; never log it."""
        return self._value

    def __repr__(self) -> str:
        return (
            f"AttestationToken(token_type={self.token_type!r}, audience={self.audience!r}, "
            f"<redacted, {len(self._value)} chars>)"
        )

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AttestationToken):
            return NotImplemented
        return (self._value, self.token_type, self.audience) == (
            other._value,
            other.token_type,
            other.audience,
        )

    def __hash__(self) -> int:
        return hash((self._value, self.token_type, self.audience))


def looks_like_jwt(text: str) -> bool:
    """True when `text` has the shape of a compact JWS: three base64url parts."""
    return _JWT_SHAPE.fullmatch(text) is not None


def redact_tokens(text: str) -> str:
    """`text` with anything shaped like a JWT replaced, for error messages built from bodies."""
    return _JWT_INSIDE_TEXT.sub("<redacted token>", text)


def check_token_request(audience: str, nonces: Sequence[str], token_type: str) -> TokenType:
    """Refuse, with a message naming the problem, a request the launcher would refuse.

    The audience must be 1-512 bytes; there may be at most six nonces, each 10-74 bytes of
    UTF-8; the token type must be "OIDC" or "PKI". Returns the token type, typed.
    """
    if token_type not in TOKEN_TYPES:
        raise AttestationRequestError(f"token_type must be 'OIDC' or 'PKI', not {token_type!r}")
    audience_bytes = len(audience.encode("utf-8"))
    if not audience.strip() or audience_bytes > MAX_AUDIENCE_BYTES:
        raise AttestationRequestError(
            f"the audience must be 1-{MAX_AUDIENCE_BYTES} bytes (got {audience_bytes})"
        )
    if isinstance(nonces, str):
        raise AttestationRequestError("nonces must be a sequence of strings, not one string")
    if len(nonces) > MAX_NONCES:
        raise AttestationRequestError(f"at most {MAX_NONCES} nonces (got {len(nonces)})")
    for index, nonce in enumerate(nonces):
        size = len(nonce.encode("utf-8"))
        if not MIN_NONCE_BYTES <= size <= MAX_NONCE_BYTES:
            raise AttestationRequestError(
                f"nonce #{index + 1} is {size} bytes; each nonce must be "
                f"{MIN_NONCE_BYTES}-{MAX_NONCE_BYTES} bytes"
            )
    return "OIDC" if token_type == "OIDC" else "PKI"
