"""Receipts issued and checked: an attester vouches for a transcript's hash, `issue_receipt`
binds the two, `verify_receipt` says offline exactly what holds of a receipt (the receipt and
its file are `conclave.attestation.receipt_format`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

import jwt
from pydantic import JsonValue

from conclave.attestation.canonical import (
    CANONICAL_FORM,
    CANONICAL_VERSION,
    canonical_sha256,
)
from conclave.attestation.claims import TokenType
from conclave.attestation.keys import TrustAnchors, fetch_jwks
from conclave.attestation.launcher import LauncherClient
from conclave.attestation.policy import DEFAULT_AUDIENCE, AttestationPolicy
from conclave.attestation.receipt_format import (
    AttestationMode,
    Receipt,
    read_receipt_file,
    transcript_json,
    transcript_sha256,
)
from conclave.attestation.simulated import SimulatedIssuer
from conclave.attestation.token import AttestationToken
from conclave.attestation.validator import CLAIM_CHECKS, SIGNATURE_CHECKS, verify_token
from conclave.attestation.verification_report import Check, CheckStatus, VerificationReport
from conclave.consensus.transcript import Transcript
from conclave.settings import Settings

logger = logging.getLogger(__name__)


class Attester(Protocol):
    """Something that can vouch for a transcript hash: none, simulated, or a real TEE."""

    @property
    def mode(self) -> AttestationMode:
        """The receipt mode this attester produces."""
        ...

    async def attest(self, nonce: str) -> AttestationToken | None:
        """A token whose `eat_nonce` holds `nonce`, or None when this attester has none."""
        ...


class NoAttester:
    """Attests nothing: receipts in mode "none" prove only the transcript's integrity."""

    @property
    def mode(self) -> AttestationMode:
        return "none"

    async def attest(self, nonce: str) -> AttestationToken | None:
        return None


class SimulatedAttester:
    """Attests with simulated tokens from a development key (see `SimulatedIssuer`)."""

    def __init__(
        self,
        issuer: SimulatedIssuer | None = None,
        *,
        audience: str = DEFAULT_AUDIENCE,
        token_type: TokenType = "OIDC",
    ) -> None:
        self.issuer = issuer or SimulatedIssuer()
        self.audience = audience
        self.token_type: TokenType = token_type

    @property
    def mode(self) -> AttestationMode:
        return "simulated"

    async def attest(self, nonce: str) -> AttestationToken | None:
        return self.issuer.issue(self.audience, [nonce], self.token_type)


class ConfidentialSpaceAttester:
    """Attests with tokens from the Confidential Space launcher.

    PKI tokens are the default: they carry their certificate chain, so a receipt can be checked
    against Google's long-lived root long after the OIDC signing keys have rotated.
    """

    def __init__(
        self,
        *,
        audience: str = DEFAULT_AUDIENCE,
        token_type: TokenType = "PKI",
        client: LauncherClient | None = None,
    ) -> None:
        self.client = client or LauncherClient()
        self.audience = audience
        self.token_type: TokenType = token_type

    @property
    def mode(self) -> AttestationMode:
        return "confidential-space"

    async def attest(self, nonce: str) -> AttestationToken | None:
        return await self.client.request_token(self.audience, [nonce], self.token_type)


def attester_from_settings(settings: Settings) -> Attester:
    """The attester `CONCLAVE_ATTESTATION` names. A simulated one keeps its development key
    (and the JWKS and root to verify with) in `<home>/simulated-attestation`."""
    audience = settings.attestation_audience
    if settings.attestation == "simulated":
        issuer = SimulatedIssuer(settings.home / "simulated-attestation")
        return SimulatedAttester(issuer, audience=audience)
    if settings.attestation == "confidential-space":
        return ConfidentialSpaceAttester(audience=audience)
    return NoAttester()


async def issue_receipt(
    transcript: Transcript, attester: Attester, *, now: datetime | None = None
) -> Receipt:
    """A receipt for `transcript`, attested by `attester` with the transcript hash as nonce.

    Errors from the attester (e.g. `LauncherError`) propagate: a receipt never silently falls
    back to a weaker mode than the one asked for.
    """
    digest = transcript_sha256(transcript)
    token = await attester.attest(digest)
    logger.info(
        "issued a %s receipt for transcript %s (sha256 %s)", attester.mode, transcript.id, digest
    )
    return Receipt(
        transcript_id=transcript.id,
        transcript_sha256=digest,
        created_at=now or datetime.now(UTC),
        mode=attester.mode,
        token_type=token.token_type if token else None,
        audience=token.audience if token else None,
        attestation_token=token.reveal() if token else None,
    )


def verify_receipt(
    receipt: Receipt,
    transcript: Transcript | Mapping[str, JsonValue] | None,
    policy: AttestationPolicy,
    trust: TrustAnchors,
    *,
    at: datetime | None = None,
    require_attestation: bool = True,
) -> VerificationReport:
    """Check a receipt offline and say exactly what holds.

    - `canonical_form`: the receipt uses a canonical form this version knows;
    - `transcript_hash`, `transcript_id`: the transcript (when given) hashes to the receipt's
      sha256 and has its id; without a transcript these are reported as not checked;
    - `attestation`: a token is present (a "none" receipt fails here unless
      `require_attestation=False`);
    - the token checks of `verify_token`, with the receipt's sha256 as the expected nonce,
      made at `at` (default: the token's own signed `iat`, never the receipt's unsigned
      `created_at`, so old receipts stay verifiable after their token expired, and a
      presenter cannot backdate one);
    - `mode`: the receipt's mode agrees with the token (simulated or not).
    """
    checks: list[Check] = []
    _check_canonical_form(receipt, checks)
    _check_transcript(receipt, transcript, checks)
    token = receipt.attestation_token
    if receipt.mode == "none" or token is None:
        checks.append(_attestation_absent(receipt, require_attestation))
        return VerificationReport(subject="receipt", checks=tuple(checks))
    checks.append(_passed("attestation", f"{receipt.mode} token present"))
    report = verify_token(
        token,
        policy,
        trust,
        expected_nonce=receipt.transcript_sha256,
        now=at,
        at_issue=at is None,
    )
    checks.extend(report.checks)
    checks.append(_mode_check(receipt, report))
    return VerificationReport(
        subject="receipt", checks=tuple(checks), token_type=report.token_type, claims=report.claims
    )


def verify_receipt_file(
    path: Path | str,
    *,
    jwks_path: Path | str | None = None,
    root_cert_path: Path | str | None = None,
    audience: str = DEFAULT_AUDIENCE,
    allow_simulated: bool = False,
    allow_debug: bool = False,
    expected_image_digest: str | None = None,
    require_image_digest: bool = False,
    require_attestation: bool = True,
    fetch_keys: bool = False,
    at: datetime | None = None,
) -> VerificationReport:
    """Verify a receipt file, for `conclave verify RECEIPT`.

    Trust comes from `jwks_path` (OIDC tokens) and/or `root_cert_path` (PKI tokens). With
    `fetch_keys=True` and no `jwks_path`, an OIDC token's keys are fetched from Google's
    discovery document over HTTPS. Raises `ReceiptFormatError` for a file that is not a receipt
    and `TrustAnchorError` for keys that cannot be loaded; every other problem is a failed check
    in the returned report (render it with `report.render()`).
    """
    bundle = read_receipt_file(path)
    policy = AttestationPolicy(
        audience=audience,
        allow_simulated=allow_simulated,
        allow_debug=allow_debug,
        expected_image_digest=expected_image_digest,
        require_image_digest=require_image_digest,
    )
    trust = TrustAnchors.from_files(jwks_path=jwks_path, root_cert_path=root_cert_path)
    token = bundle.receipt.attestation_token
    if fetch_keys and trust.jwks is None and token is not None and _is_oidc(token):
        trust = TrustAnchors(jwks=fetch_jwks(policy.issuer), pki_root=trust.pki_root)
    return verify_receipt(
        bundle.receipt,
        bundle.transcript,
        policy,
        trust,
        at=at,
        require_attestation=require_attestation,
    )


def _check_canonical_form(receipt: Receipt, checks: list[Check]) -> None:
    form = f"{receipt.canonical_form}/{receipt.canonical_version}"
    if (receipt.canonical_form, receipt.canonical_version) == (CANONICAL_FORM, CANONICAL_VERSION):
        checks.append(_passed("canonical_form", form))
    else:
        checks.append(
            _failed(
                "canonical_form",
                f"{form} is not known here (this version hashes with "
                f"{CANONICAL_FORM}/{CANONICAL_VERSION})",
            )
        )


def _check_transcript(
    receipt: Receipt,
    transcript: Transcript | Mapping[str, JsonValue] | None,
    checks: list[Check],
) -> None:
    if transcript is None:
        reason = "no transcript given: the receipt's hash cannot be tied to an answer"
        checks.append(Check(name="transcript_hash", status=CheckStatus.NOT_CHECKED, detail=reason))
        checks.append(Check(name="transcript_id", status=CheckStatus.NOT_CHECKED, detail=reason))
        return
    value = transcript_json(transcript) if isinstance(transcript, Transcript) else transcript
    try:
        digest = canonical_sha256(value)
    except ValueError as exc:
        checks.append(_failed("transcript_hash", f"the transcript has no canonical form: {exc}"))
    else:
        if digest == receipt.transcript_sha256:
            checks.append(_passed("transcript_hash", f"sha256 {digest}"))
        else:
            checks.append(
                _failed(
                    "transcript_hash",
                    f"the transcript hashes to {digest}, the receipt says "
                    f"{receipt.transcript_sha256}: one of them was altered",
                )
            )
    found_id = value.get("id")
    if found_id == receipt.transcript_id:
        checks.append(_passed("transcript_id", repr(receipt.transcript_id)))
    else:
        checks.append(
            _failed(
                "transcript_id",
                f"the transcript's id is {found_id!r}, the receipt's {receipt.transcript_id!r}",
            )
        )


def _attestation_absent(receipt: Receipt, required: bool) -> Check:
    if receipt.mode != "none":
        return _failed("attestation", f"the receipt says mode {receipt.mode!r} but holds no token")
    if receipt.attestation_token is not None:
        return _failed("attestation", "the receipt says mode 'none' but holds a token")
    detail = (
        "no attestation (mode 'none'): only the transcript's integrity can be checked, "
        "nothing vouches for where it ran"
    )
    if required:
        return _failed(
            "attestation",
            f"{detail}; accepted only where unattested receipts are allowed "
            "(`conclave verify --allow-unattested`, `require_attestation=False`)",
        )
    return Check(name="attestation", status=CheckStatus.NOT_APPLICABLE, detail=detail)


def _mode_check(receipt: Receipt, report: VerificationReport) -> Check:
    if report.claims is None:
        return Check(
            name="mode", status=CheckStatus.NOT_CHECKED, detail="not checked: token not trusted"
        )
    token_mode: AttestationMode = "simulated" if report.claims.simulated else "confidential-space"
    if token_mode != receipt.mode:
        return _failed("mode", f"the receipt says {receipt.mode!r}, the token is {token_mode!r}")
    return _passed("mode", receipt.mode)


def _is_oidc(token: str) -> bool:
    try:
        return "x5c" not in jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return False


def _passed(name: str, detail: str) -> Check:
    return Check(name=name, status=CheckStatus.PASSED, detail=detail)


def _failed(name: str, detail: str) -> Check:
    return Check(name=name, status=CheckStatus.FAILED, detail=detail)


RECEIPT_CHECKS: Final = (
    "canonical_form",
    "transcript_hash",
    "transcript_id",
    "attestation",
    *SIGNATURE_CHECKS,
    *CLAIM_CHECKS,
    "mode",
)
"""Every check a receipt verification can report (the key check may be `certificate_chain`)."""
