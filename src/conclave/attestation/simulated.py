"""Simulated attestation for development: real-shaped tokens signed by a local key.

A `SimulatedIssuer` makes tokens with the claims of a Confidential Space token, signed (RS256) by
a development key it generates on first use and keeps in a directory (or only in memory). Every
simulated token is marked twice: its issuer is `SIMULATED_ISSUER` and it carries
`"conclave_simulated": true`. The validator refuses such tokens unless the policy sets
`allow_simulated=True`: anyone can make them, so they prove nothing about where code ran.

The directory holds the key (`simulated-key.pem`, mode 0600), the matching JWKS
(`simulated-jwks.json`, for verifying OIDC-style simulated tokens) and a self-signed certificate
(`simulated-root.pem`, the pinned root for PKI-style ones).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from conclave.attestation.claims import (
    CONFIDENTIAL_SPACE_SWNAME,
    DEBUG_DISABLED,
    SIMULATED_CLAIM,
    SIMULATED_ISSUER,
    SIMULATED_KID_PREFIX,
    SIMULATED_ORGANIZATION,
    TokenType,
)
from conclave.attestation.keys import Jwks, parse_certificate
from conclave.attestation.token import AttestationToken, check_token_request

logger = logging.getLogger(__name__)

KEY_FILE: Final = "simulated-key.pem"
JWKS_FILE: Final = "simulated-jwks.json"
ROOT_FILE: Final = "simulated-root.pem"
SIMULATED_HWMODEL: Final = "GCP_AMD_SEV"

SIMULATED_IMAGE_DIGEST: Final = "sha256:" + "0" * 64
_EAT_PROFILE: Final = (
    "https://cloud.google.com/confidential-computing/confidential-space/docs/reference/token-claims"
)


class SimulatedIssuer:
    """Issues simulated attestation tokens signed by a development key.

    With `key_dir`, the key is read from there, or generated and saved there on first use;
    without it, the key lives in memory only and dies with the issuer.
    """

    def __init__(self, key_dir: Path | str | None = None) -> None:
        self._key_dir = Path(key_dir) if key_dir is not None else None
        self._key: rsa.RSAPrivateKey | None = None
        self._root: x509.Certificate | None = None

    @property
    def key_dir(self) -> Path | None:
        """Where the development key is kept, or None when it lives in memory."""
        return self._key_dir

    @property
    def jwks_path(self) -> Path | None:
        """The JWKS file that verifies this issuer's OIDC-style tokens (None in memory)."""
        return self._key_dir / JWKS_FILE if self._key_dir is not None else None

    @property
    def root_path(self) -> Path | None:
        """The certificate to pin for this issuer's PKI-style tokens (None in memory)."""
        return self._key_dir / ROOT_FILE if self._key_dir is not None else None

    @property
    def kid(self) -> str:
        """The key id written in every token's header."""
        public = (
            self._private_key()
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return SIMULATED_KID_PREFIX + hashlib.sha256(public).hexdigest()[:16]

    def jwks(self) -> Jwks:
        """The public key, as the JWKS a verifier trusts for simulated OIDC tokens."""
        return Jwks.from_json(self.jwks_json())

    def jwks_json(self) -> str:
        """The JWKS document of the public key."""
        numbers = self._private_key().public_key().public_numbers()
        jwk = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }
        return json.dumps({"keys": [jwk]}, indent=2)

    def root_certificate(self) -> x509.Certificate:
        """The self-signed certificate of the key, to pin for simulated PKI tokens."""
        if self._root is None:
            self._root = self._load_or_make_root()
        return self._root

    def issue(
        self,
        audience: str,
        nonces: Sequence[str] = (),
        token_type: TokenType = "OIDC",
        *,
        now: datetime | None = None,
        lifetime_s: int = 3600,
        image_digest: str = SIMULATED_IMAGE_DIGEST,
        image_reference: str = "localhost/conclave:simulated",
        debug: bool = False,
    ) -> AttestationToken:
        """A simulated token for `audience` carrying `nonces`, as the launcher would answer.

        The request is checked by the launcher's rules (nonces of 10-74 bytes, ...). `debug`
        makes the token say it came from a debug image.
        """
        checked_type = check_token_request(audience, nonces, token_type)
        issued = int((now or datetime.now(UTC)).timestamp())
        claims = {
            "iss": SIMULATED_ISSUER,
            "aud": audience,
            "sub": f"{SIMULATED_ISSUER}/instances/local",
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime_s,
            "eat_nonce": list(nonces),
            "eat_profile": _EAT_PROFILE,
            "secboot": True,
            "oemid": 11129,
            "hwmodel": SIMULATED_HWMODEL,
            "swname": CONFIDENTIAL_SPACE_SWNAME,
            "swversion": ["simulated"],
            "dbgstat": "enabled" if debug else DEBUG_DISABLED,
            "submods": {
                "container": {
                    "image_reference": image_reference,
                    "image_digest": image_digest,
                    "restart_policy": "Never",
                },
                "confidential_space": {"support_attributes": []},
                "gce": {"zone": "simulated", "instance_name": "local"},
            },
            SIMULATED_CLAIM: True,
        }
        headers: dict[str, str | list[str]] = {"kid": self.kid, "typ": "JWT"}
        if checked_type == "PKI":
            der = self.root_certificate().public_bytes(serialization.Encoding.DER)
            headers["x5c"] = [base64.b64encode(der).decode("ascii")]
        value = jwt.encode(claims, self._private_key(), algorithm="RS256", headers=headers)
        logger.info("issued a SIMULATED %s attestation token for %r", checked_type, audience)
        return AttestationToken(value, token_type=checked_type, audience=audience)

    def _private_key(self) -> rsa.RSAPrivateKey:
        if self._key is None:
            self._key = self._load_or_make_key()
        return self._key

    def _load_or_make_key(self) -> rsa.RSAPrivateKey:
        if self._key_dir is None:
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path = self._key_dir / KEY_FILE
        if not path.exists():
            self._key_dir.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            try:
                _write_new(path, pem, mode=0o600)
                logger.warning("generated a development attestation key in %s", path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        jwks_path = self._key_dir / JWKS_FILE
        self._key = loaded
        jwks_path.write_text(self.jwks_json(), encoding="utf-8")
        return loaded

    def _load_or_make_root(self) -> x509.Certificate:
        path = self.root_path
        if path is not None and path.exists():
            return parse_certificate(path.read_bytes())
        certificate = _self_signed(self._private_key())
        if path is not None:
            try:
                _write_new(path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
            except FileExistsError:
                return parse_certificate(path.read_bytes())
        return certificate


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIMULATED_ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, "conclave simulated attestation root"),
        ]
    )
    start = datetime.now(UTC) - timedelta(days=1)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _write_new(path: Path, data: bytes, *, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
