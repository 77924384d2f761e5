"""Who may call, how much they may send, and what must never leave the process: the API key
check (constant time), the prompt limits, and the redaction of secrets from text (the
`Redactor` of `conclave.redaction`, which the CLI's run log uses too)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Sequence

from conclave.redaction import PieceRedactor as PieceRedactor
from conclave.redaction import Redactor as Redactor
from conclave.server.api_errors import prompt_too_long, too_many_messages
from conclave.types import Message


class KeyChecker:
    """Checks a presented bearer key against the configured ones.

    Keys are compared as SHA-256 digests with `hmac.compare_digest`, against every key with no
    early exit, so the time taken says nothing about how much of a key was right, nor which."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = tuple(_digest(key) for key in keys)

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def accepts(self, presented: str | None) -> bool:
        if not self._digests:
            return True
        if not presented:
            return False
        candidate = _digest(presented)
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(candidate, digest)
        return matched


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


@functools.lru_cache(maxsize=1024)
def is_loopback(host: str) -> bool:
    """Whether `host` (an address, or `localhost`) is this machine's loopback. A host name
    other than `localhost` may resolve to anything: it is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def check_conversation(
    messages: Sequence[Message],
    *,
    max_chars: int,
    max_messages: int,
    param: str = "messages",
) -> None:
    """Raise ApiError 400 naming `param` when the conversation is over a limit."""
    if len(messages) > max_messages:
        raise too_many_messages(len(messages), max_messages)
    chars = sum(len(message.content) for message in messages)
    if chars > max_chars:
        raise prompt_too_long(param, chars, max_chars)
