"""Who may call, how much they may send, and what must never leave the process: the API key
check (constant time), the prompt limits, and the redaction of secrets from text."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import TypeVar

from pydantic import BaseModel

from conclave.server.api_errors import prompt_too_long, too_many_messages
from conclave.types import Message

M = TypeVar("M", bound=BaseModel)


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


class Redactor:
    """Replaces every known secret, and anything sent as a bearer token, with `[redacted]`.

    A placeholder such as `Bearer <key>` is left as it is: it is an instruction, not a key."""

    _BEARER = re.compile(r"(?i)(bearer\s+)(?![<\[{])[^\s\"'`,;]+")

    def __init__(self, secrets: Iterable[str]) -> None:
        known = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        self._secrets = re.compile("|".join(re.escape(s) for s in known)) if known else None
        self.longest_secret = len(known[0]) if known else 0

    def __call__(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub("[redacted]", text)
        return self._BEARER.sub(r"\1[redacted]", text)

    def model(self, value: M) -> M:
        """`value` (a response, an event, a transcript) with every string in it redacted; the
        same object when nothing needed it."""
        dumped = value.model_dump_json()
        cleaned = self(dumped)
        return value if cleaned == dumped else type(value).model_validate_json(cleaned)

    def pieces(self) -> PieceRedactor:
        """A redactor for text that arrives in pieces (a streamed answer)."""
        return PieceRedactor(self)

    def secret_spans(self, text: str) -> list[tuple[int, int]]:
        if self._secrets is None:
            return []
        return [match.span() for match in self._secrets.finditer(text)]


class PieceRedactor:
    """Redacts a text streamed in pieces, where a key may be split between two of them.

    It holds back the last `longest secret - 1` characters until the next piece (or `flush`)
    shows whether they begin a secret, so no part of a known key is ever sent. (A bearer token
    split across pieces is caught only within one piece.)"""

    def __init__(self, redact: Redactor) -> None:
        self._redact = redact
        self._held = ""

    def feed(self, piece: str) -> str:
        """The redacted text that is now safe to send (may be empty)."""
        text = self._held + piece
        cut = max(0, len(text) - max(0, self._redact.longest_secret - 1))
        for start, end in self._redact.secret_spans(text):
            if start < cut < end:
                cut = end
        self._held = text[cut:]
        return self._redact(text[:cut])

    def flush(self) -> str:
        """Whatever is still held, redacted: call once the text is complete."""
        text, self._held = self._held, ""
        return self._redact(text)


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
