"""Trust anchors: the issuer's signing keys (OIDC) and the pinned root certificate (PKI).

OIDC tokens are checked against the keys in the issuer's JWKS, found through its discovery
document (`{issuer}/.well-known/openid-configuration` -> `jwks_uri`). They can be fetched over
HTTPS (`fetch_jwks`, `afetch_jwks`) or read from files saved earlier, for offline use
(`load_jwks`). Google rotates these keys, so a JWKS only verifies tokens signed while its keys
were current: for receipts kept a long time, PKI tokens are the better choice.

PKI tokens carry their certificate chain (`x5c`); it is checked up to a root certificate the
verifier pinned beforehand (`load_root_certificate`), never up to one the token brings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ConfigDict, ValidationError

from conclave.attestation.claims import GOOGLE_ISSUER
from conclave.errors import TrustAnchorError

DISCOVERY_PATH: Final = "/.well-known/openid-configuration"
PKI_ROOT_ENDPOINT: Final = f"{GOOGLE_ISSUER}/.well-known/attestation-pki-root"
"""Where Google publishes (the address of) the root certificate of PKI tokens."""
MIN_RSA_BITS: Final = 2048
_MAX_DOCUMENT_BYTES: Final = 1_000_000


class OidcDiscovery(BaseModel):
    """The fields of an OpenID discovery document that verification needs."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    issuer: str
    jwks_uri: str
    id_token_signing_alg_values_supported: tuple[str, ...] = ()


class _Jwk(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    kty: str
    kid: str | None = None
    use: str | None = None
    alg: str | None = None
    n: str | None = None
    e: str | None = None


class _JwkSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    keys: tuple[_Jwk, ...]


@dataclass(frozen=True)
class Jwks:
    """The RS256 signing keys of a JWKS, by key id (`kid`)."""

    keys: Mapping[str, rsa.RSAPublicKey] = field(default_factory=dict)

    @classmethod
    def from_json(cls, document: str | bytes) -> Jwks:
        """Parse a JWKS document. Keys that are not RSA signing keys are left out;
        TrustAnchorError if none is left or a key is malformed."""
        try:
            jwk_set = _JwkSet.model_validate_json(document)
        except ValidationError as exc:
            raise TrustAnchorError(f"not a JWKS document: {_first_error(exc)}") from exc
        keys: dict[str, rsa.RSAPublicKey] = {}
        for jwk in jwk_set.keys:
            if jwk.kty != "RSA" or jwk.use not in (None, "sig") or jwk.alg not in (None, "RS256"):
                continue
            if not jwk.kid or jwk.n is None or jwk.e is None:
                raise TrustAnchorError("a JWKS RSA key lacks its kid, n or e")
            key = rsa.RSAPublicNumbers(_b64url_int(jwk.e), _b64url_int(jwk.n)).public_key()
            if key.key_size < MIN_RSA_BITS:
                raise TrustAnchorError(f"JWKS key {jwk.kid!r} is only {key.key_size} bits")
            keys[jwk.kid] = key
        if not keys:
            raise TrustAnchorError("the JWKS holds no RSA signing key")
        return cls(keys=keys)

    def key(self, kid: str) -> rsa.RSAPublicKey | None:
        """The key with id `kid`, or None."""
        return self.keys.get(kid)


@dataclass(frozen=True)
class TrustAnchors:
    """What a verifier trusts: the issuer's JWKS (for OIDC tokens) and/or a pinned root (PKI)."""

    jwks: Jwks | None = None
    pki_root: x509.Certificate | None = None

    @classmethod
    def from_files(
        cls,
        *,
        jwks_path: Path | str | None = None,
        root_cert_path: Path | str | None = None,
        discovery_path: Path | str | None = None,
        issuer: str = GOOGLE_ISSUER,
    ) -> TrustAnchors:
        """Read the anchors from files, for offline verification; a missing one stays None."""
        jwks = None
        if jwks_path is not None:
            jwks = load_jwks(jwks_path, discovery_path=discovery_path, issuer=issuer)
        root = load_root_certificate(root_cert_path) if root_cert_path is not None else None
        return cls(jwks=jwks, pki_root=root)


def load_jwks(
    path: Path | str, *, discovery_path: Path | str | None = None, issuer: str = GOOGLE_ISSUER
) -> Jwks:
    """Read a JWKS file; with a discovery document, also check that it names `issuer`."""
    if discovery_path is not None:
        check_discovery(parse_discovery(_read(discovery_path)), issuer)
    return Jwks.from_json(_read(path))


def load_root_certificate(path: Path | str) -> x509.Certificate:
    """Read the pinned root certificate (PEM or DER) from a file."""
    return parse_certificate(_read(path))


def parse_certificate(data: bytes) -> x509.Certificate:
    """A certificate from PEM or DER bytes; TrustAnchorError if it is neither."""
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise TrustAnchorError("not a PEM or DER X.509 certificate") from exc


def certificate_fingerprint(certificate: x509.Certificate) -> str:
    """The sha256 of the certificate's DER bytes, as lower-case hex."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def parse_discovery(document: str | bytes) -> OidcDiscovery:
    """Parse an OpenID discovery document."""
    try:
        return OidcDiscovery.model_validate_json(document)
    except ValidationError as exc:
        raise TrustAnchorError(f"not an OpenID discovery document: {_first_error(exc)}") from exc


def check_discovery(discovery: OidcDiscovery, issuer: str) -> None:
    """Refuse a discovery document for another issuer, without RS256, or with a non-HTTPS JWKS."""
    if discovery.issuer != issuer:
        raise TrustAnchorError(
            f"the discovery document is for issuer {discovery.issuer!r}, expected {issuer!r}"
        )
    supported = discovery.id_token_signing_alg_values_supported
    if supported and "RS256" not in supported:
        raise TrustAnchorError(f"the issuer does not sign with RS256 (it lists {supported})")
    if not discovery.jwks_uri.startswith("https://"):
        raise TrustAnchorError(f"the jwks_uri is not HTTPS: {discovery.jwks_uri!r}")


def discovery_url(issuer: str) -> str:
    """Where `issuer` publishes its discovery document; only HTTPS issuers are accepted."""
    if not issuer.startswith("https://"):
        raise TrustAnchorError(f"keys are only fetched over HTTPS, not from {issuer!r}")
    return issuer.rstrip("/") + DISCOVERY_PATH


def fetch_jwks(
    issuer: str = GOOGLE_ISSUER,
    *,
    timeout_s: float = 10.0,
    transport: httpx2.BaseTransport | None = None,
) -> Jwks:
    """Fetch the issuer's discovery document and then its JWKS, over HTTPS (blocking)."""
    url = discovery_url(issuer)
    with httpx2.Client(transport=transport, timeout=timeout_s, follow_redirects=False) as client:
        discovery = parse_discovery(_get(client, url))
        check_discovery(discovery, issuer)
        return Jwks.from_json(_get(client, discovery.jwks_uri))


async def afetch_jwks(
    issuer: str = GOOGLE_ISSUER,
    *,
    timeout_s: float = 10.0,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> Jwks:
    """Fetch the issuer's discovery document and then its JWKS, over HTTPS."""
    url = discovery_url(issuer)
    async with httpx2.AsyncClient(
        transport=transport, timeout=timeout_s, follow_redirects=False
    ) as client:
        discovery = parse_discovery(_checked_body(await _aget(client, url), url))
        check_discovery(discovery, issuer)
        jwks_url = discovery.jwks_uri
        return Jwks.from_json(_checked_body(await _aget(client, jwks_url), jwks_url))


def _get(client: httpx2.Client, url: str) -> bytes:
    try:
        response = client.get(url)
    except httpx2.HTTPError as exc:
        raise TrustAnchorError(f"could not fetch {url}: {type(exc).__name__}: {exc}") from exc
    return _checked_body(response, url)


async def _aget(client: httpx2.AsyncClient, url: str) -> httpx2.Response:
    try:
        return await client.get(url)
    except httpx2.HTTPError as exc:
        raise TrustAnchorError(f"could not fetch {url}: {type(exc).__name__}: {exc}") from exc


def _checked_body(response: httpx2.Response, url: str) -> bytes:
    if response.status_code != 200:
        raise TrustAnchorError(f"{url} answered HTTP {response.status_code}")
    if len(response.content) > _MAX_DOCUMENT_BYTES:
        raise TrustAnchorError(f"{url} answered a document over {_MAX_DOCUMENT_BYTES} bytes")
    return response.content


def _read(path: Path | str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TrustAnchorError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _b64url_int(text: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TrustAnchorError("a JWKS key holds a value that is not base64url") from exc
    return int.from_bytes(raw, "big")


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "document"
    return f"{where}: {error['msg']}"
