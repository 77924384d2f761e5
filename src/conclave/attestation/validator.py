"""Verify an attestation token: its signature, then every claim the policy asks about.

`verify_token` never raises on a bad token: it returns a `VerificationReport` naming every check
and how it ended (call `raise_for_failure()` to turn a failure into an exception). The order is
the order of trust: the token's form, its algorithm (RS256 only; `none`, HMAC and every other
algorithm are refused before any key is touched), the key (a JWKS key for OIDC tokens, the
x5c chain up to the pinned root for PKI tokens), the signature, and only then the claims. When
one of the first four fails, the claims are reported as not checked: nothing in an unverified
token is trusted, or even shown.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from conclave.attestation.claims import (
    CONFIDENTIAL_SPACE_SWNAME,
    DEBUG_DISABLED,
    SIMULATED_ISSUER,
    SIMULATED_KID_PREFIX,
    SIMULATED_ORGANIZATION,
    AttestationClaims,
    TokenType,
)
from conclave.attestation.keys import TrustAnchors, certificate_fingerprint
from conclave.attestation.policy import AttestationPolicy, normalize_digest
from conclave.attestation.token import AttestationToken
from conclave.attestation.verification_report import (
    UNPINNED_WORKLOAD,
    Check,
    CheckStatus,
    VerificationReport,
)

ALGORITHM = "RS256"
MAX_CHAIN_LENGTH = 5

SIGNATURE_CHECKS = ("format", "algorithm", "signing_key", "signature")
"""The checks that establish trust; `signing_key` is named `certificate_chain` for PKI."""
CLAIM_CHECKS = (
    "claims",
    "simulated",
    "issuer",
    "audience",
    "expiry",
    "not_before",
    "nonce",
    "swname",
    "hwmodel",
    "secboot",
    "dbgstat",
    "image_digest",
    "support_attributes",
)
"""The claim checks, made only once the signature verified."""


class _CheckError(Exception):
    """A check that failed; its message is the check's detail (never the token)."""


@dataclass
class _Checks:
    items: list[Check] = field(default_factory=list)

    def passed(self, name: str, detail: str) -> None:
        self.items.append(Check(name=name, status=CheckStatus.PASSED, detail=detail))

    def failed(self, name: str, detail: str) -> None:
        self.items.append(Check(name=name, status=CheckStatus.FAILED, detail=detail))

    def not_applicable(self, name: str, detail: str) -> None:
        self.items.append(Check(name=name, status=CheckStatus.NOT_APPLICABLE, detail=detail))

    def not_checked(self, names: tuple[str, ...], reason: str) -> None:
        for name in names:
            self.items.append(Check(name=name, status=CheckStatus.NOT_CHECKED, detail=reason))

    def run(self, name: str, check: Callable[[], str]) -> bool:
        try:
            self.passed(name, check())
        except _CheckError as failure:
            self.failed(name, str(failure))
            return False
        return True


def verify_token(
    token: str | AttestationToken,
    policy: AttestationPolicy,
    trust: TrustAnchors,
    *,
    expected_nonce: str | None = None,
    now: datetime | None = None,
    at_issue: bool = False,
) -> VerificationReport:
    """Check `token` against `policy`, with keys from `trust`, at `now` (default: the clock).

    With `at_issue` (and no `now`) the token is checked as of its own signed `iat`: a token
    that was valid when it was issued stays verifiable after it expired. (The time is read
    before the signature is checked, but the signature covers it, so a changed `iat` fails.)
    A token signed by a simulated (development) key is treated as simulated whatever it
    claims. `expected_nonce` must appear in the token's `eat_nonce` when given. Returns the
    report of every check; it never raises for a bad token.
    """
    text = token.reveal() if isinstance(token, AttestationToken) else token
    if now is not None and now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    moment = now or (_claimed_issue_time(text) if at_issue else None) or datetime.now(UTC)
    checks = _Checks()
    verified = _verify_signature(text, trust, moment, policy.leeway_s, checks)
    if verified is None:
        checks.not_checked(CLAIM_CHECKS, "not checked: the token's signature is not trusted")
        return VerificationReport(checks=tuple(checks.items))
    token_type, payload, simulated_key = verified
    try:
        claims = AttestationClaims.model_validate_json(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "payload"
        checks.failed("claims", f"the claims are malformed: {where}: {error['msg']}")
        checks.not_checked(CLAIM_CHECKS[1:], "not checked: the claims could not be read")
        return VerificationReport(checks=tuple(checks.items), token_type=token_type)
    checks.passed("claims", "the claims are well-formed")
    _check_claims(claims, policy, expected_nonce, moment, simulated_key, checks)
    return VerificationReport(checks=tuple(checks.items), token_type=token_type, claims=claims)


def _claimed_issue_time(token: str) -> datetime | None:
    """The `iat` in the token's payload, before any signature is checked (None if unreadable)."""
    try:
        issued = jwt.decode(token, options={"verify_signature": False}).get("iat")
    except jwt.PyJWTError:
        return None
    if not isinstance(issued, int | float) or isinstance(issued, bool):
        return None
    try:
        return datetime.fromtimestamp(issued, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _signed_by_simulated_key(header: dict[str, object], trust: TrustAnchors) -> bool:
    """Whether the key that signed the token is one of conclave's development keys."""
    if "x5c" in header:
        root = trust.pki_root
        if root is None:
            return False
        names = root.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
        return any(name.value == SIMULATED_ORGANIZATION for name in names)
    kid = header.get("kid")
    return isinstance(kid, str) and kid.startswith(SIMULATED_KID_PREFIX)


def _verify_signature(
    token: str, trust: TrustAnchors, now: datetime, leeway_s: float, checks: _Checks
) -> tuple[TokenType, bytes, bool] | None:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        checks.failed("format", f"not a compact JWS: {exc}")
        checks.not_checked(SIGNATURE_CHECKS[1:], "not checked: the token could not be read")
        return None
    checks.passed("format", "a compact JWS with a JSON header")

    alg = header.get("alg")
    if alg != ALGORITHM:
        checks.failed("algorithm", f"alg is {alg!r}; only {ALGORITHM} is accepted")
        checks.not_checked(SIGNATURE_CHECKS[2:], "not checked: the algorithm is refused")
        return None
    checks.passed("algorithm", ALGORITHM)

    token_type: TokenType = "PKI" if "x5c" in header else "OIDC"
    key_check = "certificate_chain" if token_type == "PKI" else "signing_key"
    try:
        if token_type == "PKI":
            key, detail = _key_from_chain(header["x5c"], trust, now, leeway_s)
        else:
            key, detail = _key_from_jwks(header.get("kid"), trust)
    except _CheckError as failure:
        checks.failed(key_check, str(failure))
        checks.not_checked(("signature",), "not checked: no trusted key to check it with")
        return None
    checks.passed(key_check, detail)

    try:
        decoded = jwt.PyJWS().decode_complete(token, key=key, algorithms=[ALGORITHM])
    except jwt.InvalidSignatureError:
        checks.failed("signature", "the signature does not match the token's header and claims")
        return None
    except jwt.PyJWTError as exc:
        checks.failed("signature", f"the signature could not be checked: {exc}")
        return None
    checks.passed("signature", f"{ALGORITHM} signature verified")
    payload = decoded["payload"]
    assert isinstance(payload, bytes)
    return token_type, payload, _signed_by_simulated_key(header, trust)


def _key_from_jwks(kid: object, trust: TrustAnchors) -> tuple[rsa.RSAPublicKey, str]:
    if trust.jwks is None:
        raise _CheckError("an OIDC token, but no JWKS was given to check it with")
    if not isinstance(kid, str) or not kid:
        raise _CheckError("the token's header names no key id (kid)")
    key = trust.jwks.key(kid)
    if key is None:
        raise _CheckError(
            f"key id {kid!r} is not in the JWKS (keys rotate: use the JWKS of when the "
            "token was made, or a PKI token)"
        )
    return key, f"key id {kid!r} found in the JWKS"


def _key_from_chain(
    x5c: object, trust: TrustAnchors, now: datetime, leeway_s: float
) -> tuple[rsa.RSAPublicKey, str]:
    root = trust.pki_root
    if root is None:
        raise _CheckError("a PKI token, but no pinned root certificate was given to check it with")
    chain = _parse_x5c(x5c)
    root_fingerprint = certificate_fingerprint(root)
    # The chain may end at the pinned root itself, or at a certificate the root issued.
    ends_at_root = certificate_fingerprint(chain[-1]) == root_fingerprint
    path = chain if ends_at_root else [*chain, root]
    for index, (child, parent) in enumerate(itertools.pairwise(path)):
        _check_issued_by(child, parent, index)
        _check_can_issue(parent, below=index)
    leeway = timedelta(seconds=leeway_s)
    for certificate in path:
        if not (
            certificate.not_valid_before_utc - leeway
            <= now
            <= certificate.not_valid_after_utc + leeway
        ):
            raise _CheckError(
                f"certificate {_name(certificate)} is valid from "
                f"{certificate.not_valid_before_utc.isoformat()} to "
                f"{certificate.not_valid_after_utc.isoformat()}, not at {now.isoformat()}"
            )
    leaf = path[0]
    key = leaf.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise _CheckError(f"the signing certificate {_name(leaf)} does not hold an RSA key")
    usage = _extension(leaf, x509.KeyUsage)
    if usage is not None and not usage.digital_signature:
        raise _CheckError(f"the signing certificate {_name(leaf)} may not sign (key usage)")
    return key, (
        f"x5c chain of {len(chain)} verified up to the pinned root "
        f"(sha256 {root_fingerprint[:16]}...), every certificate valid at {now.isoformat()}"
    )


def _parse_x5c(x5c: object) -> list[x509.Certificate]:
    if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
        raise _CheckError("the x5c header is not a non-empty list of certificates")
    if len(x5c) > MAX_CHAIN_LENGTH:
        raise _CheckError(f"the x5c chain has {len(x5c)} certificates (at most {MAX_CHAIN_LENGTH})")
    chain = []
    for index, encoded in enumerate(x5c):
        try:
            chain.append(x509.load_der_x509_certificate(base64.b64decode(encoded, validate=True)))
        except (binascii.Error, ValueError) as exc:
            raise _CheckError(f"x5c certificate {index} is not a base64 DER certificate") from exc
    return chain


def _check_issued_by(child: x509.Certificate, parent: x509.Certificate, index: int) -> None:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise _CheckError(
            f"x5c certificate {index} ({_name(child)}) is not issued by {_name(parent)}"
        ) from exc


def _check_can_issue(issuer: x509.Certificate, *, below: int) -> None:
    constraints = _extension(issuer, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise _CheckError(f"{_name(issuer)} is not a CA certificate but issued another")
    if constraints.path_length is not None and below > constraints.path_length:
        raise _CheckError(f"{_name(issuer)} exceeds its path length constraint")
    usage = _extension(issuer, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise _CheckError(f"{_name(issuer)} may not sign certificates (key usage)")


_E = TypeVar("_E", bound=x509.ExtensionType)


def _extension(certificate: x509.Certificate, kind: type[_E]) -> _E | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _name(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string() or "(no subject)"


def _check_claims(
    claims: AttestationClaims,
    policy: AttestationPolicy,
    expected_nonce: str | None,
    now: datetime,
    simulated_key: bool,
    checks: _Checks,
) -> None:
    checks.run("simulated", lambda: _simulated(claims, policy, simulated_key))
    checks.run("issuer", lambda: _issuer(claims, policy, simulated_key))
    checks.run("audience", lambda: _audience(claims, policy))
    checks.run("expiry", lambda: _expiry(claims, policy, now))
    checks.run("not_before", lambda: _not_before(claims, policy, now))
    if expected_nonce is None:
        checks.not_applicable("nonce", "no nonce expected")
    else:
        checks.run("nonce", lambda: _nonce(claims, expected_nonce))
    checks.run("swname", lambda: _swname(claims))
    checks.run("hwmodel", lambda: _hwmodel(claims, policy))
    if policy.require_secure_boot:
        checks.run("secboot", lambda: _secboot(claims))
    else:
        checks.not_applicable("secboot", f"Secure Boot not required (secboot={claims.secboot})")
    checks.run("dbgstat", lambda: _dbgstat(claims, policy))
    digest = claims.submods.container.image_digest
    expected_digest = policy.expected_image_digest
    if expected_digest is None and policy.require_image_digest:
        checks.failed(
            "image_digest",
            f"the workload is not pinned: a digest is required but none was given "
            f"(the token says {digest}); pass the expected image digest",
        )
    elif expected_digest is None:
        checks.not_applicable(
            "image_digest",
            f"{UNPINNED_WORKLOAD}: no digest expected, so any container image passes "
            f"(the token says {digest})",
        )
    else:
        checks.run("image_digest", lambda: _image_digest(digest, expected_digest))
    if policy.required_support_attributes:
        checks.run("support_attributes", lambda: _support(claims, policy))
    else:
        attributes = ", ".join(claims.submods.confidential_space.support_attributes) or "none"
        checks.not_applicable("support_attributes", f"none required (the image has {attributes})")


def _simulated(claims: AttestationClaims, policy: AttestationPolicy, simulated_key: bool) -> str:
    if simulated_key and not claims.simulated:
        raise _CheckError(
            "signed by a SIMULATED (development) key, yet it does not say it is simulated: "
            "a development key cannot vouch for a genuine token"
        )
    if claims.simulated and not simulated_key:
        raise _CheckError(
            "it says it is simulated, but it is not signed by a simulated key: refused"
        )
    if not claims.simulated:
        return "not a simulated token"
    if policy.allow_simulated:
        return "SIMULATED token (development key), accepted because simulation is allowed"
    raise _CheckError(
        "a SIMULATED token, signed by a development key that proves nothing: "
        "refused unless simulation is explicitly allowed"
    )


def _issuer(claims: AttestationClaims, policy: AttestationPolicy, simulated_key: bool) -> str:
    simulated = simulated_key and policy.allow_simulated
    expected = SIMULATED_ISSUER if simulated else policy.issuer
    if claims.iss != expected:
        raise _CheckError(f"iss is {claims.iss!r}, expected {expected!r}")
    return claims.iss


def _audience(claims: AttestationClaims, policy: AttestationPolicy) -> str:
    if policy.audience not in claims.audiences:
        raise _CheckError(f"aud is {claims.aud!r}, expected {policy.audience!r}")
    return policy.audience


def _expiry(claims: AttestationClaims, policy: AttestationPolicy, now: datetime) -> str:
    expires = _time(claims.exp)
    if now.timestamp() >= claims.exp + policy.leeway_s:
        raise _CheckError(f"expired at {expires}, checked at {now.isoformat()}")
    return f"valid until {expires}"


def _not_before(claims: AttestationClaims, policy: AttestationPolicy, now: datetime) -> str:
    moment = now.timestamp() + policy.leeway_s
    if claims.nbf is not None and claims.nbf > moment:
        raise _CheckError(f"not valid before {_time(claims.nbf)}, checked at {now.isoformat()}")
    if claims.iat > moment:
        raise _CheckError(
            f"issued in the future ({_time(claims.iat)}), checked at {now.isoformat()}"
        )
    return f"issued at {_time(claims.iat)}"


def _nonce(claims: AttestationClaims, expected: str) -> str:
    if expected not in claims.nonces:
        raise _CheckError(
            f"eat_nonce {list(claims.nonces)} does not hold the expected {expected!r}"
        )
    return f"eat_nonce holds {expected!r}"


def _swname(claims: AttestationClaims) -> str:
    if claims.swname != CONFIDENTIAL_SPACE_SWNAME:
        raise _CheckError(f"swname is {claims.swname!r}, expected {CONFIDENTIAL_SPACE_SWNAME!r}")
    return claims.swname


def _hwmodel(claims: AttestationClaims, policy: AttestationPolicy) -> str:
    if claims.hwmodel not in policy.allowed_hwmodels:
        raise _CheckError(
            f"hwmodel is {claims.hwmodel!r}, expected one of {policy.allowed_hwmodels}"
        )
    return claims.hwmodel


def _secboot(claims: AttestationClaims) -> str:
    if claims.secboot is not True:
        raise _CheckError(f"secboot is {claims.secboot!r}: Secure Boot is required")
    return "Secure Boot on"


def _dbgstat(claims: AttestationClaims, policy: AttestationPolicy) -> str:
    if claims.dbgstat == DEBUG_DISABLED:
        return f"production image ({DEBUG_DISABLED})"
    if policy.allow_debug:
        return f"DEBUG image (dbgstat={claims.dbgstat!r}), accepted because debug is allowed"
    raise _CheckError(
        f"dbgstat is {claims.dbgstat!r}: a debug image, whose operator has root access; "
        "refused unless debug images are allowed"
    )


def _image_digest(digest: str | None, expected: str) -> str:
    if digest is None or normalize_digest(digest) != expected:
        raise _CheckError(f"the container image digest is {digest!r}, expected {expected!r}")
    return expected


def _support(claims: AttestationClaims, policy: AttestationPolicy) -> str:
    have = claims.submods.confidential_space.support_attributes
    missing = [name for name in policy.required_support_attributes if name not in have]
    if missing:
        raise _CheckError(f"the image lacks support attributes {missing} (it has {list(have)})")
    return ", ".join(have)


def _time(timestamp: float) -> str:
    try:
        return datetime.fromtimestamp(timestamp, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{timestamp} (seconds since 1970)"
