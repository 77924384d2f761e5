"""verify_token: one rejection test for each check, and the happy paths (OIDC and PKI)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conclave.attestation import (
    AttestationPolicy,
    AttestationToken,
    CheckStatus,
    Jwks,
    TrustAnchors,
    VerificationReport,
    verify_token,
)
from conclave.attestation.validator import CLAIM_CHECKS
from conclave.errors import AttestationVerificationError

from .attestation_fakes import (
    AUDIENCE,
    IMAGE_DIGEST,
    NONCE,
    OIDC_KID,
    FakeGoogle,
    b64url,
    der_b64,
    make_certificate,
    new_key,
)

POLICY = AttestationPolicy(audience=AUDIENCE)


def failed(report: VerificationReport) -> list[str]:
    return [check.name for check in report.failures]


def assert_untrusted(report: VerificationReport) -> None:
    """A token whose signature is not trusted: no claim is checked, none is exposed."""
    assert not report.ok
    assert report.claims is None
    for name in CLAIM_CHECKS:
        assert report.check(name).status is CheckStatus.NOT_CHECKED


def manual_token(header: dict[str, object], claims: dict[str, object], signature: bytes) -> str:
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    return f"{head}.{body}.{b64url(signature)}"


# --- happy paths ---------------------------------------------------------------------------


def test_a_genuine_oidc_token_verifies(google: FakeGoogle) -> None:
    report = verify_token(google.oidc_token(), POLICY, google.trust, expected_nonce=NONCE)

    assert report.ok, report.render()
    assert report.token_type == "OIDC"
    assert report.check("signing_key").status is CheckStatus.PASSED
    assert report.claims is not None
    assert report.claims.submods.container.image_digest == IMAGE_DIGEST


def test_a_genuine_pki_token_verifies_up_to_the_pinned_root(google: FakeGoogle) -> None:
    report = verify_token(google.pki_token(), POLICY, google.trust, expected_nonce=NONCE)

    assert report.ok, report.render()
    assert report.token_type == "PKI"
    assert report.check("certificate_chain").status is CheckStatus.PASSED


def test_a_chain_without_the_root_verifies_when_the_pinned_root_issued_its_top(
    google: FakeGoogle,
) -> None:
    token = google.pki_token(x5c=[der_b64(google.leaf), der_b64(google.intermediate)])

    report = verify_token(token, POLICY, TrustAnchors(pki_root=google.root))

    assert report.ok, report.render()


def test_the_expected_image_digest_verifies_with_or_without_its_prefix(
    google: FakeGoogle,
) -> None:
    bare = IMAGE_DIGEST.removeprefix("sha256:").upper()
    policy = AttestationPolicy(audience=AUDIENCE, expected_image_digest=bare)

    report = verify_token(google.oidc_token(), policy, google.trust)

    assert report.ok, report.render()
    assert report.check("image_digest").status is CheckStatus.PASSED


def test_a_single_string_nonce_and_a_list_audience_are_read(google: FakeGoogle) -> None:
    token = google.oidc_token(eat_nonce=NONCE, aud=["other", AUDIENCE])

    assert verify_token(token, POLICY, google.trust, expected_nonce=NONCE).ok


def test_the_token_wrapper_is_accepted(google: FakeGoogle) -> None:
    token = AttestationToken(google.oidc_token(), token_type="OIDC", audience=AUDIENCE)

    assert verify_token(token, POLICY, google.trust).ok


def test_required_support_attributes_are_checked(google: FakeGoogle) -> None:
    policy = AttestationPolicy(audience=AUDIENCE, required_support_attributes=("STABLE",))
    stale = google.oidc_token(submods={"confidential_space": {"support_attributes": ["USABLE"]}})

    assert verify_token(google.oidc_token(), policy, google.trust).ok
    assert failed(verify_token(stale, policy, google.trust)) == ["support_attributes"]


# --- signature and algorithm ---------------------------------------------------------------


def test_a_forged_signature_is_refused_and_nothing_else_is_trusted(
    google: FakeGoogle, stranger_key: rsa.RSAPrivateKey
) -> None:
    forged = jwt.encode(google.claims(), stranger_key, algorithm="RS256", headers={"kid": OIDC_KID})

    report = verify_token(forged, POLICY, google.trust, expected_nonce=NONCE)

    assert failed(report) == ["signature"]
    assert_untrusted(report)


def test_claims_changed_after_signing_are_refused(google: FakeGoogle) -> None:
    head, _, signature = google.oidc_token().split(".")
    tampered_claims = google.claims(aud="https://attacker.example")
    tampered = f"{head}.{b64url(json.dumps(tampered_claims).encode())}.{signature}"

    report = verify_token(tampered, POLICY, google.trust)

    assert failed(report) == ["signature"]
    assert_untrusted(report)


def test_hs256_signed_with_the_public_key_is_refused(google: FakeGoogle) -> None:
    # The classic key-confusion attack: HMAC keyed with the verifier's RSA public key.
    public_pem = google.oidc_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "kid": OIDC_KID, "typ": "JWT"}
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(google.claims()).encode())
    mac = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()

    report = verify_token(f"{head}.{body}.{b64url(mac)}", POLICY, google.trust)

    assert failed(report) == ["algorithm"]
    assert "HS256" in report.check("algorithm").detail
    assert_untrusted(report)


def test_alg_none_is_refused(google: FakeGoogle) -> None:
    token = manual_token({"alg": "none", "kid": OIDC_KID}, google.claims(), b"")

    report = verify_token(token, POLICY, google.trust)

    assert failed(report) == ["algorithm"]
    assert_untrusted(report)


def test_rs384_is_refused_even_with_the_right_key(google: FakeGoogle) -> None:
    token = jwt.encode(
        google.claims(), google.oidc_key, algorithm="RS384", headers={"kid": OIDC_KID}
    )

    report = verify_token(token, POLICY, google.trust)

    assert failed(report) == ["algorithm"]
    assert_untrusted(report)


def test_a_token_that_is_not_a_jws_is_refused(google: FakeGoogle) -> None:
    report = verify_token("not-a-token", POLICY, google.trust)

    assert failed(report) == ["format"]
    assert_untrusted(report)


def test_an_unknown_key_id_is_refused(google: FakeGoogle) -> None:
    token = jwt.encode(google.claims(), google.oidc_key, algorithm="RS256", headers={"kid": "old"})

    report = verify_token(token, POLICY, google.trust)

    assert failed(report) == ["signing_key"]
    assert "'old' is not in the JWKS" in report.check("signing_key").detail
    assert_untrusted(report)


def test_an_oidc_token_without_a_jwks_cannot_verify(google: FakeGoogle) -> None:
    report = verify_token(google.oidc_token(), POLICY, TrustAnchors(pki_root=google.root))

    assert failed(report) == ["signing_key"]
    assert_untrusted(report)


# --- x5c chain -----------------------------------------------------------------------------


def test_a_chain_up_to_another_root_is_refused(google: FakeGoogle) -> None:
    other_key = new_key()
    other_root = make_certificate("Fake Confidential Space Root", other_key, ca=True)

    report = verify_token(google.pki_token(), POLICY, TrustAnchors(pki_root=other_root))

    assert failed(report) == ["certificate_chain"]
    assert_untrusted(report)


def test_a_broken_chain_is_refused(google: FakeGoogle, stranger_key: rsa.RSAPrivateKey) -> None:
    # A leaf that names the intermediate as issuer but was signed by someone else.
    rogue_leaf = make_certificate(
        "Fake Confidential Space Signer",
        stranger_key,
        issuer=google.intermediate,
        issuer_key=stranger_key,
        ca=False,
    )
    x5c = [der_b64(rogue_leaf), der_b64(google.intermediate), der_b64(google.root)]
    token = google.pki_token(x5c=x5c, key=stranger_key)

    report = verify_token(token, POLICY, google.trust)

    assert failed(report) == ["certificate_chain"]
    assert "x5c certificate 0" in report.check("certificate_chain").detail
    assert_untrusted(report)


def test_a_chain_missing_its_intermediate_is_refused(google: FakeGoogle) -> None:
    token = google.pki_token(x5c=[der_b64(google.leaf), der_b64(google.root)])

    report = verify_token(token, POLICY, google.trust)

    assert failed(report) == ["certificate_chain"]


def test_a_token_signed_by_another_key_than_the_leaf_is_refused(
    google: FakeGoogle, stranger_key: rsa.RSAPrivateKey
) -> None:
    report = verify_token(google.pki_token(key=stranger_key), POLICY, google.trust)

    assert failed(report) == ["signature"]
    assert_untrusted(report)


def test_an_expired_leaf_certificate_is_refused(google: FakeGoogle) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=30)
    expired_leaf = make_certificate(
        "Fake Confidential Space Signer",
        google.leaf_key,
        issuer=google.intermediate,
        issuer_key=google.intermediate_key,
        ca=False,
        not_before=long_ago,
        not_after=long_ago + timedelta(days=1),
    )
    x5c = [der_b64(expired_leaf), der_b64(google.intermediate), der_b64(google.root)]

    report = verify_token(google.pki_token(x5c=x5c), POLICY, google.trust)

    assert failed(report) == ["certificate_chain"]
    assert "valid from" in report.check("certificate_chain").detail


def test_a_leaf_that_is_not_a_ca_cannot_issue(google: FakeGoogle) -> None:
    # The leaf (not a CA) "issues" a certificate for a key it chose.
    child_key = new_key()
    child = make_certificate(
        "child", child_key, issuer=google.leaf, issuer_key=google.leaf_key, ca=False
    )
    x5c = [der_b64(child), *google.x5c]

    report = verify_token(google.pki_token(x5c=x5c, key=child_key), POLICY, google.trust)

    assert failed(report) == ["certificate_chain"]
    assert "not a CA" in report.check("certificate_chain").detail


def test_an_x5c_that_is_not_base64_der_is_refused(google: FakeGoogle) -> None:
    report = verify_token(google.pki_token(x5c=["%%%"]), POLICY, google.trust)

    assert failed(report) == ["certificate_chain"]


def test_a_pki_token_without_a_pinned_root_cannot_verify(google: FakeGoogle) -> None:
    trust = TrustAnchors(jwks=Jwks.from_json(google.jwks_json))

    report = verify_token(google.pki_token(), POLICY, trust)

    assert failed(report) == ["certificate_chain"]
    assert "no pinned root" in report.check("certificate_chain").detail


# --- claims --------------------------------------------------------------------------------


def test_a_wrong_issuer_is_refused(google: FakeGoogle) -> None:
    token = google.oidc_token(iss="https://evil.example")

    assert failed(verify_token(token, POLICY, google.trust)) == ["issuer"]


def test_a_wrong_audience_is_refused(google: FakeGoogle) -> None:
    token = google.oidc_token(audience="https://sts.googleapis.com")

    report = verify_token(token, POLICY, google.trust)

    assert failed(report) == ["audience"]
    assert "sts.googleapis.com" in report.check("audience").detail


def test_an_expired_token_is_refused(google: FakeGoogle) -> None:
    token = google.oidc_token(now=datetime.now(UTC) - timedelta(hours=2))

    assert failed(verify_token(token, POLICY, google.trust)) == ["expiry"]


def test_expiry_allows_only_the_small_leeway(google: FakeGoogle) -> None:
    issued = datetime.now(UTC) - timedelta(hours=1)
    token = google.oidc_token(now=issued)

    just_after = issued + timedelta(hours=1, seconds=10)
    well_after = issued + timedelta(hours=1, seconds=31)
    assert verify_token(token, POLICY, google.trust, now=just_after).ok
    assert failed(verify_token(token, POLICY, google.trust, now=well_after)) == ["expiry"]


def test_a_not_yet_valid_token_is_refused(google: FakeGoogle) -> None:
    token = google.oidc_token(nbf=int(datetime.now(UTC).timestamp()) + 600)

    assert failed(verify_token(token, POLICY, google.trust)) == ["not_before"]


def test_a_token_issued_in_the_future_is_refused(google: FakeGoogle) -> None:
    token = google.oidc_token(now=datetime.now(UTC) + timedelta(minutes=10))

    assert failed(verify_token(token, POLICY, google.trust)) == ["not_before"]


def test_a_wrong_nonce_is_refused(google: FakeGoogle) -> None:
    report = verify_token(google.oidc_token(), POLICY, google.trust, expected_nonce="b" * 64)

    assert failed(report) == ["nonce"]


def test_without_an_expected_nonce_the_nonce_check_does_not_apply(google: FakeGoogle) -> None:
    report = verify_token(google.oidc_token(), POLICY, google.trust)

    assert report.check("nonce").status is CheckStatus.NOT_APPLICABLE


def test_a_debug_image_is_refused_unless_allowed(google: FakeGoogle) -> None:
    token = google.oidc_token(dbgstat="enabled")

    report = verify_token(token, POLICY, google.trust)
    allowed = verify_token(
        token, AttestationPolicy(audience=AUDIENCE, allow_debug=True), google.trust
    )

    assert failed(report) == ["dbgstat"]
    assert "debug image" in report.check("dbgstat").detail
    assert allowed.ok
    assert "DEBUG" in allowed.check("dbgstat").detail


def test_a_missing_dbgstat_is_refused(google: FakeGoogle) -> None:
    assert failed(verify_token(google.oidc_token(dbgstat=None), POLICY, google.trust)) == [
        "dbgstat"
    ]


def test_a_wrong_image_digest_is_refused(google: FakeGoogle) -> None:
    policy = AttestationPolicy(audience=AUDIENCE, expected_image_digest="sha256:" + "ef" * 32)

    report = verify_token(google.oidc_token(), policy, google.trust)

    assert failed(report) == ["image_digest"]


def test_a_wrong_swname_is_refused(google: FakeGoogle) -> None:
    assert failed(verify_token(google.oidc_token(swname="GCE"), POLICY, google.trust)) == ["swname"]


def test_a_shielded_vm_without_memory_encryption_is_refused(google: FakeGoogle) -> None:
    token = google.oidc_token(hwmodel="GCP_SHIELDED_VM")

    assert failed(verify_token(token, POLICY, google.trust)) == ["hwmodel"]


def test_secure_boot_off_is_refused(google: FakeGoogle) -> None:
    assert failed(verify_token(google.oidc_token(secboot=False), POLICY, google.trust)) == [
        "secboot"
    ]


def test_malformed_claims_are_refused(google: FakeGoogle) -> None:
    report = verify_token(google.oidc_token(exp="tomorrow"), POLICY, google.trust)

    assert failed(report) == ["claims"]
    assert "exp" in report.check("claims").detail
    assert report.claims is None


def test_a_simulated_claim_on_a_real_signature_is_refused(google: FakeGoogle) -> None:
    token = google.oidc_token(conclave_simulated=True)

    assert failed(verify_token(token, POLICY, google.trust)) == ["simulated"]


def test_every_failing_check_is_listed(google: FakeGoogle) -> None:
    token = google.oidc_token(iss="https://evil.example", audience="x", dbgstat="enabled")

    report = verify_token(token, POLICY, google.trust, expected_nonce="c" * 64)

    assert failed(report) == ["issuer", "audience", "nonce", "dbgstat"]


# --- the report ----------------------------------------------------------------------------


def test_raise_for_failure_names_the_failed_checks(google: FakeGoogle) -> None:
    report = verify_token(google.oidc_token(audience="x"), POLICY, google.trust)

    with pytest.raises(AttestationVerificationError, match="audience") as raised:
        report.raise_for_failure()
    assert raised.value.report is report


def test_the_rendered_report_marks_each_check_and_never_holds_the_token(
    google: FakeGoogle,
) -> None:
    token = google.oidc_token(dbgstat="enabled")

    text = verify_token(token, POLICY, google.trust).render()

    assert text.startswith("Token verification (OIDC token): FAILED (1 of")
    assert "[FAIL] dbgstat" in text
    assert "[ok  ] signature" in text
    assert token not in text
    assert token.split(".")[2] not in text


def test_a_naive_time_is_refused(google: FakeGoogle) -> None:
    with pytest.raises(ValueError, match="timezone"):
        verify_token(google.oidc_token(), POLICY, google.trust, now=datetime(2030, 1, 1))
