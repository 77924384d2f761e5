"""Trust anchors: JWKS and discovery documents (files or HTTPS), pinned root certificates."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conclave.attestation import (
    GOOGLE_ISSUER,
    Jwks,
    TrustAnchors,
    afetch_jwks,
    fetch_jwks,
    load_jwks,
    load_root_certificate,
)
from conclave.errors import TrustAnchorError

from .attestation_fakes import OIDC_KID, FakeGoogle

JWKS_URI = "https://www.googleapis.com/service_accounts/v1/metadata/jwk/signer"


def discovery(**overrides: object) -> str:
    document: dict[str, object] = {
        "issuer": GOOGLE_ISSUER,
        "jwks_uri": JWKS_URI,
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["id_token"],
    }
    document.update(overrides)
    return json.dumps(document)


def google_endpoints(google: FakeGoogle, discovery_document: str) -> httpx2.MockTransport:
    def handle(request: httpx2.Request) -> httpx2.Response:
        if str(request.url) == f"{GOOGLE_ISSUER}/.well-known/openid-configuration":
            return httpx2.Response(200, text=discovery_document)
        if str(request.url) == JWKS_URI:
            return httpx2.Response(200, text=google.jwks_json)
        return httpx2.Response(404)

    return httpx2.MockTransport(handle)


def test_the_jwks_keeps_rsa_signing_keys_only(google: FakeGoogle) -> None:
    jwks = Jwks.from_json(google.jwks_json)

    assert list(jwks.keys) == [OIDC_KID]
    assert jwks.key("ignored") is None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"keys": []}', "no RSA signing key"),
        ('{"nokeys": 1}', "not a JWKS"),
        ('{"keys": [{"kty": "RSA", "kid": "k"}]}', "lacks its kid, n or e"),
    ],
)
def test_a_bad_jwks_is_refused(document: str, message: str) -> None:
    with pytest.raises(TrustAnchorError, match=message):
        Jwks.from_json(document)


def test_a_weak_rsa_key_is_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    numbers = weak.public_numbers()

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    document = json.dumps(
        {"keys": [{"kty": "RSA", "kid": "weak", "n": b64(numbers.n), "e": b64(numbers.e)}]}
    )
    with pytest.raises(TrustAnchorError, match="1024 bits"):
        Jwks.from_json(document)


def test_keys_are_fetched_through_the_discovery_document(google: FakeGoogle) -> None:
    jwks = fetch_jwks(transport=google_endpoints(google, discovery()))

    assert jwks.key(OIDC_KID) is not None


async def test_keys_are_fetched_asynchronously_too(google: FakeGoogle) -> None:
    transport = google_endpoints(google, discovery())

    jwks = await afetch_jwks(transport=transport)

    assert jwks.key(OIDC_KID) is not None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (discovery(issuer="https://evil.example"), "is for issuer 'https://evil.example'"),
        (discovery(jwks_uri="http://insecure.example/jwks"), "not HTTPS"),
        (discovery(id_token_signing_alg_values_supported=["ES256"]), "RS256"),
        ("<html>", "not an OpenID discovery document"),
    ],
)
def test_a_bad_discovery_document_is_refused(
    google: FakeGoogle, document: str, message: str
) -> None:
    with pytest.raises(TrustAnchorError, match=message):
        fetch_jwks(transport=google_endpoints(google, document))


def test_an_http_error_is_a_trust_anchor_error() -> None:
    transport = httpx2.MockTransport(lambda request: httpx2.Response(503))

    with pytest.raises(TrustAnchorError, match="HTTP 503"):
        fetch_jwks(transport=transport)


def test_keys_are_never_fetched_over_plain_http() -> None:
    with pytest.raises(TrustAnchorError, match="only fetched over HTTPS"):
        fetch_jwks("http://confidentialcomputing.googleapis.com")


def test_saved_files_make_the_same_anchors(
    google: FakeGoogle, anchor_files: tuple[Path, Path], tmp_path: Path
) -> None:
    jwks_path, root_path = anchor_files
    discovery_path = tmp_path / "openid-configuration.json"
    discovery_path.write_text(discovery())
    der_path = tmp_path / "root.der"
    der_path.write_bytes(google.root.public_bytes(serialization.Encoding.DER))

    trust = TrustAnchors.from_files(
        jwks_path=jwks_path, root_cert_path=root_path, discovery_path=discovery_path
    )

    assert trust.jwks is not None
    assert trust.jwks.key(OIDC_KID) is not None
    assert trust.pki_root == google.root
    assert load_root_certificate(der_path) == google.root


def test_a_discovery_file_for_another_issuer_is_refused(
    anchor_files: tuple[Path, Path], tmp_path: Path
) -> None:
    discovery_path = tmp_path / "openid-configuration.json"
    discovery_path.write_text(discovery(issuer="https://evil.example"))

    with pytest.raises(TrustAnchorError, match="evil"):
        load_jwks(anchor_files[0], discovery_path=discovery_path)


def test_unreadable_anchor_files_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "root.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")

    with pytest.raises(TrustAnchorError, match="not a PEM or DER"):
        load_root_certificate(garbage)
    with pytest.raises(TrustAnchorError, match="cannot read"):
        load_jwks(tmp_path / "missing.json")
