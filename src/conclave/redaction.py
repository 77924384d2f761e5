"""What must never be kept or leave the process: the secrets a process knows, and the redactor
that cuts them, and anything sent as a bearer token, out of text (a transcript before it is
stored, a response or log line before it is sent)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import TypeVar

from pydantic import BaseModel

from conclave.config import ConsensusConfig
from conclave.settings import Settings

M = TypeVar("M", bound=BaseModel)


def known_secrets(settings: Settings, configs: Iterable[ConsensusConfig]) -> list[str]:
    """OpenRouter's key and the values of every `api_key_env` the configs name."""
    secrets = []
    if settings.openrouter_api_key is not None:
        secrets.append(settings.openrouter_api_key.get_secret_value())
    for config in configs:
        for spec in (*config.models, config.aggregator_spec.model):
            if spec.api_key_env and os.environ.get(spec.api_key_env):
                secrets.append(os.environ[spec.api_key_env])
    return secrets


class Redactor:
    """Replaces every known secret, and anything sent as a bearer token, with `[redacted]`.

    A placeholder such as `Bearer <key>` is left as it is: it is an instruction, not a key."""

    _BEARER = re.compile(r"(?i)(bearer\s+)(?![<\[{])[^\s\"'`,;]+")

    def __init__(self, secrets: Iterable[str]) -> None:
        known = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        self._known = tuple(known)
        self._secrets = re.compile("|".join(re.escape(s) for s in known)) if known else None
        self.longest_secret = len(known[0]) if known else 0

    def __call__(self, text: str) -> str:
        # Plain substring tests first: a whole transcript is scanned on every run, and those
        # are several times cheaper than the patterns when, as nearly always, nothing matches.
        if self._secrets is not None and any(secret in text for secret in self._known):
            text = self._secrets.sub("[redacted]", text)
        if "bearer" in text.lower():
            text = self._BEARER.sub(r"\1[redacted]", text)
        return text

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
