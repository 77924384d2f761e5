"""A receipt and its file: a consensus run's transcript hash, bound to an attestation token.

The data model alone (what the store keeps and the service serves), apart from how receipts are
issued and checked (`conclave.attestation.receipts`).

A `Receipt` says: the run `transcript_id`, whose transcript has the canonical sha256
`transcript_sha256`, was recorded at `created_at` by code running in `mode`; when the mode is not
"none", `attestation_token` is a token requested with that sha256 as its nonce, so the TEE's
signed claims (image digest, production image, hardware) vouch for that very transcript.

A receipt file is a bundle of the receipt and the transcript's JSON, so that a third party needs
that one file plus the issuer's keys (a JWKS) or root certificate to check it::

    {
      "format": "conclave.receipt-bundle",
      "version": 1,
      "receipt": {
        "version": 1,
        "transcript_id": "...",
        "transcript_sha256": "<64 hex>",
        "canonical_form": "conclave-jcs",
        "canonical_version": 1,
        "created_at": "2025-01-01T12:00:00Z",
        "mode": "none" | "simulated" | "confidential-space",
        "token_type": "OIDC" | "PKI" | null,
        "audience": "conclave-receipt" | null,
        "attestation_token": "<JWT>" | null
      },
      "transcript": { ... Transcript.model_dump(mode="json") ... } | null
    }

The hash is taken over the transcript JSON exactly as the file holds it (canonicalised, see
`conclave.attestation.canonical`), never over a re-parsed model, so a receipt stays verifiable
when the Transcript model later gains fields.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, ValidationError

from conclave.attestation.canonical import CANONICAL_FORM, CANONICAL_VERSION, canonical_sha256
from conclave.attestation.claims import TokenType
from conclave.consensus.transcript import Transcript
from conclave.errors import ReceiptFormatError
from conclave.text_files import read_user_text

AttestationMode = Literal["none", "simulated", "confidential-space"]
"""Where a run says it happened: unattested, simulated TEE, or Confidential Space."""

BUNDLE_FORMAT: Final = "conclave.receipt-bundle"
_SHA256_HEX: Final = r"^[0-9a-f]{64}$"


class Receipt(BaseModel):
    """The record that binds a transcript hash to an attestation (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    transcript_id: str
    transcript_sha256: str = Field(pattern=_SHA256_HEX)
    canonical_form: str = CANONICAL_FORM
    canonical_version: int = CANONICAL_VERSION
    created_at: AwareDatetime
    mode: AttestationMode
    token_type: TokenType | None = None
    audience: str | None = None
    attestation_token: str | None = Field(default=None, repr=False)
    """The JWT itself: evidence for third parties, so it is in the file, but never in a repr."""


class ReceiptBundle(BaseModel):
    """A receipt file: the receipt and the transcript JSON it was made from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["conclave.receipt-bundle"] = BUNDLE_FORMAT
    version: Literal[1] = 1
    receipt: Receipt
    transcript: dict[str, JsonValue] | None = Field(default=None, repr=False)

    def to_json(self, *, indent: int | None = 2) -> str:
        """The file form."""
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> ReceiptBundle:
        """Read the file form; ReceiptFormatError if it is not a receipt bundle."""
        try:
            raw = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ReceiptFormatError(f"a receipt file must be JSON: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("format") != BUNDLE_FORMAT:
            raise ReceiptFormatError(f"not a conclave receipt bundle (no format {BUNDLE_FORMAT!r})")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ReceiptFormatError(f"not a valid receipt bundle: {_first_error(exc)}") from exc

    def parsed_transcript(self) -> Transcript | None:
        """The transcript as conclave's model, for display; ValidationError if it has drifted."""
        return None if self.transcript is None else Transcript.model_validate(self.transcript)


def transcript_json(transcript: Transcript) -> dict[str, JsonValue]:
    """The JSON value of a transcript that receipts hash and bundles hold."""
    return transcript.model_dump(mode="json")


def transcript_sha256(transcript: Transcript | Mapping[str, JsonValue]) -> str:
    """The sha256 (hex) of the transcript's canonical JSON (`conclave-jcs/1`)."""
    value = transcript_json(transcript) if isinstance(transcript, Transcript) else transcript
    return canonical_sha256(value)


def bundle_receipt(receipt: Receipt, transcript: Transcript | None) -> ReceiptBundle:
    """The receipt file content for `receipt` (with its transcript, recommended)."""
    return ReceiptBundle(
        receipt=receipt,
        transcript=transcript_json(transcript) if transcript is not None else None,
    )


def write_receipt_file(path: Path | str, receipt: Receipt, transcript: Transcript | None) -> Path:
    """Write the receipt bundle to `path` (atomically: a reader never sees half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = bundle_receipt(receipt, transcript).to_json()
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".receipt-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def read_receipt_file(path: Path | str) -> ReceiptBundle:
    """Read a receipt bundle; ReceiptFormatError if it cannot be read as one."""
    text = read_user_text(
        Path(path),
        ReceiptFormatError,
        expected="a receipt file (JSON)",
        missing="cannot read it: no such file",
    )
    try:
        return ReceiptBundle.from_json(text)
    except ReceiptFormatError as exc:
        raise ReceiptFormatError(f"{path}: {exc}") from exc


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "file"
    return f"{where}: {error['msg']}"
