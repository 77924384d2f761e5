"""The simulated mode: real-shaped tokens from a development key, refused unless allowed."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from conclave.attestation import (
    GOOGLE_ISSUER,
    SIMULATED_ISSUER,
    AttestationPolicy,
    CheckStatus,
    SimulatedIssuer,
    TrustAnchors,
    load_jwks,
    load_root_certificate,
    verify_token,
)
from conclave.errors import AttestationRequestError

from .attestation_fakes import AUDIENCE, NONCE, FakeGoogle

STRICT = AttestationPolicy(audience=AUDIENCE)
ALLOWING = AttestationPolicy(audience=AUDIENCE, allow_simulated=True)


@pytest.fixture(scope="module")
def issuer() -> SimulatedIssuer:
    return SimulatedIssuer()


def test_a_simulated_token_is_refused_by_default(issuer: SimulatedIssuer) -> None:
    token = issuer.issue(AUDIENCE, [NONCE])

    report = verify_token(token, STRICT, TrustAnchors(jwks=issuer.jwks()), expected_nonce=NONCE)

    assert [check.name for check in report.failures] == ["simulated", "issuer"]
    assert "SIMULATED" in report.check("simulated").detail


def test_a_simulated_token_verifies_when_simulation_is_allowed(issuer: SimulatedIssuer) -> None:
    token = issuer.issue(AUDIENCE, [NONCE])

    report = verify_token(token, ALLOWING, TrustAnchors(jwks=issuer.jwks()), expected_nonce=NONCE)

    assert report.ok, report.render()
    assert report.claims is not None
    assert report.claims.simulated
    assert report.check("simulated").status is CheckStatus.PASSED


def test_a_simulated_pki_token_verifies_against_its_root(issuer: SimulatedIssuer) -> None:
    token = issuer.issue(AUDIENCE, [NONCE], "PKI")

    report = verify_token(token, ALLOWING, TrustAnchors(pki_root=issuer.root_certificate()))

    assert report.ok, report.render()
    assert report.token_type == "PKI"


def test_simulated_tokens_are_marked_in_their_claims(issuer: SimulatedIssuer) -> None:
    claims = jwt.decode(
        issuer.issue(AUDIENCE, [NONCE]).reveal(), options={"verify_signature": False}
    )

    assert claims["iss"] == SIMULATED_ISSUER
    assert claims["conclave_simulated"] is True
    assert claims["swname"] == "CONFIDENTIAL_SPACE"
    assert claims["eat_nonce"] == [NONCE]
    assert claims["submods"]["container"]["image_digest"].startswith("sha256:")


def test_a_simulated_debug_token_is_refused_as_debug(issuer: SimulatedIssuer) -> None:
    token = issuer.issue(AUDIENCE, [NONCE], debug=True)

    report = verify_token(token, ALLOWING, TrustAnchors(jwks=issuer.jwks()))

    assert [check.name for check in report.failures] == ["dbgstat"]


def test_a_simulated_token_does_not_verify_with_the_real_issuers_keys(
    issuer: SimulatedIssuer, google: FakeGoogle
) -> None:
    report = verify_token(issuer.issue(AUDIENCE, [NONCE]), ALLOWING, google.trust)

    assert [check.name for check in report.failures] == ["signing_key"]


def test_a_simulated_token_expires_like_a_real_one(issuer: SimulatedIssuer) -> None:
    token = issuer.issue(AUDIENCE, [NONCE], now=datetime.now(UTC) - timedelta(hours=2))

    report = verify_token(token, ALLOWING, TrustAnchors(jwks=issuer.jwks()))

    assert [check.name for check in report.failures] == ["expiry"]


def test_the_simulated_issuer_checks_nonces_like_the_launcher(issuer: SimulatedIssuer) -> None:
    with pytest.raises(AttestationRequestError, match="10-74 bytes"):
        issuer.issue(AUDIENCE, ["short"])


def test_the_key_is_kept_in_its_directory_and_reused(tmp_path: Path) -> None:
    key_dir = tmp_path / "attestation"
    first = SimulatedIssuer(key_dir)
    token = first.issue(AUDIENCE, [NONCE], "PKI")
    second = SimulatedIssuer(key_dir)

    assert second.kid == first.kid
    key_file = key_dir / "simulated-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.jwks_path is not None
    assert first.root_path is not None
    # The files a verifier is pointed at verify the first issuer's tokens.
    trust = TrustAnchors(
        jwks=load_jwks(first.jwks_path), pki_root=load_root_certificate(first.root_path)
    )
    assert verify_token(token, ALLOWING, trust).ok
    assert verify_token(second.issue(AUDIENCE, [NONCE]), ALLOWING, trust).ok


def test_an_in_memory_issuer_writes_nothing(issuer: SimulatedIssuer) -> None:
    assert issuer.key_dir is None
    assert issuer.jwks_path is None
    assert issuer.root_path is None
    assert SimulatedIssuer().kid != issuer.kid


def test_a_development_key_cannot_sign_a_token_claiming_googles_issuer(
    issuer: SimulatedIssuer,
) -> None:
    genuine_looking = jwt.decode(
        issuer.issue(AUDIENCE, [NONCE]).reveal(), options={"verify_signature": False}
    )
    genuine_looking["iss"] = GOOGLE_ISSUER
    del genuine_looking["conclave_simulated"]
    forged = jwt.encode(
        genuine_looking,
        issuer._private_key(),
        algorithm="RS256",
        headers={"kid": issuer.kid, "typ": "JWT"},
    )
    report = verify_token(forged, ALLOWING, TrustAnchors(jwks=issuer.jwks()), expected_nonce=NONCE)

    assert [check.name for check in report.failures] == ["simulated", "issuer"]
    assert "development key" in report.check("simulated").detail


def test_a_verified_token_without_a_digest_says_the_workload_is_not_pinned(
    issuer: SimulatedIssuer,
) -> None:
    token = issuer.issue(AUDIENCE, [NONCE])
    trust = TrustAnchors(jwks=issuer.jwks())

    report = verify_token(token, ALLOWING, trust, expected_nonce=NONCE)
    assert report.ok
    assert not report.workload_pinned
    assert "WORKLOAD NOT PINNED" in report.render().splitlines()[0]
    assert "WARNING" in report.render()

    strict = ALLOWING.model_copy(update={"require_image_digest": True})
    refused = verify_token(token, strict, trust, expected_nonce=NONCE)
    assert [check.name for check in refused.failures] == ["image_digest"]

    pinned = ALLOWING.model_copy(update={"expected_image_digest": "sha256:" + "0" * 64})
    report = verify_token(token, pinned, trust, expected_nonce=NONCE)
    assert report.ok
    assert report.workload_pinned
    assert "WARNING" not in report.render()
