"""Attestation for runs inside a Google Confidential Space TEE: tokens, verification, receipts.

- `LauncherClient` asks the Confidential Space launcher for a token (Unix socket, `/v1/token`).
- `SimulatedIssuer` makes real-shaped tokens with a development key, for work outside a TEE.
- `verify_token` checks a token against an `AttestationPolicy` and `TrustAnchors` and returns a
  `VerificationReport` listing every check.
- `issue_receipt` binds a transcript's canonical sha256 to a token requested with that hash as
  its nonce; `verify_receipt` / `verify_receipt_file` check such a receipt offline.

Names are loaded on first use: importing one small module of the package (the store imports
`receipt_format` for the `Receipt` model) does not load the token checks and their cryptography.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from conclave.attestation.canonical import (
        CANONICAL_FORM,
        CANONICAL_VERSION,
        canonical_json,
        canonical_sha256,
    )
    from conclave.attestation.claims import (
        GOOGLE_ISSUER,
        SIMULATED_ISSUER,
        AttestationClaims,
        TokenType,
    )
    from conclave.attestation.keys import (
        PKI_ROOT_ENDPOINT,
        Jwks,
        TrustAnchors,
        afetch_jwks,
        fetch_jwks,
        load_jwks,
        load_root_certificate,
    )
    from conclave.attestation.launcher import DEFAULT_SOCKET_PATH, LauncherClient
    from conclave.attestation.policy import DEFAULT_AUDIENCE, AttestationPolicy
    from conclave.attestation.receipt_format import (
        AttestationMode,
        Receipt,
        ReceiptBundle,
        bundle_receipt,
        read_receipt_file,
        transcript_sha256,
        write_receipt_file,
    )
    from conclave.attestation.receipts import (
        Attester,
        ConfidentialSpaceAttester,
        NoAttester,
        SimulatedAttester,
        attester_from_settings,
        issue_receipt,
        verify_receipt,
        verify_receipt_file,
    )
    from conclave.attestation.simulated import SimulatedIssuer
    from conclave.attestation.token import AttestationToken
    from conclave.attestation.validator import verify_token
    from conclave.attestation.verification_report import (
        Check,
        CheckStatus,
        VerificationReport,
        render_report,
    )

_MODULES: Final = (
    "canonical",
    "claims",
    "keys",
    "launcher",
    "policy",
    "receipt_format",
    "receipts",
    "simulated",
    "token",
    "validator",
    "verification_report",
)
"""The modules the names of `__all__` come from."""


def __getattr__(name: str) -> object:
    if name in __all__:
        for module_name in _MODULES:
            module = importlib.import_module(f"{__name__}.{module_name}")
            if name in vars(module):
                value: object = vars(module)[name]
                globals()[name] = value
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CANONICAL_FORM",
    "CANONICAL_VERSION",
    "DEFAULT_AUDIENCE",
    "DEFAULT_SOCKET_PATH",
    "GOOGLE_ISSUER",
    "PKI_ROOT_ENDPOINT",
    "SIMULATED_ISSUER",
    "AttestationClaims",
    "AttestationMode",
    "AttestationPolicy",
    "AttestationToken",
    "Attester",
    "Check",
    "CheckStatus",
    "ConfidentialSpaceAttester",
    "Jwks",
    "LauncherClient",
    "NoAttester",
    "Receipt",
    "ReceiptBundle",
    "SimulatedAttester",
    "SimulatedIssuer",
    "TokenType",
    "TrustAnchors",
    "VerificationReport",
    "afetch_jwks",
    "attester_from_settings",
    "bundle_receipt",
    "canonical_json",
    "canonical_sha256",
    "fetch_jwks",
    "issue_receipt",
    "load_jwks",
    "load_root_certificate",
    "read_receipt_file",
    "render_report",
    "transcript_sha256",
    "verify_receipt",
    "verify_receipt_file",
    "verify_token",
    "write_receipt_file",
]
