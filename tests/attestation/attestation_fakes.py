"""Stand-ins for the hardware and the issuer that are not here.

- `FakeGoogle` plays Google Cloud Attestation: an OIDC signing key published in a JWKS, and a
  locally generated CA chain (root -> intermediate -> leaf) whose leaf signs PKI tokens. Tokens
  have the shape and claims of real Confidential Space tokens.
- `FakeLauncher` plays the Confidential Space launcher: HTTP on a Unix socket in a temporary
  directory, `POST /v1/token`, answering tokens minted by `FakeGoogle` for the request's audience
  and nonces (or errors, silence, chunked bodies, as a test asks).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from conclave.attestation import GOOGLE_ISSUER, Jwks, TrustAnchors

AUDIENCE = "https://verifier.example/conclave"
NONCE = "a" * 64
IMAGE_DIGEST = "sha256:" + "ab" * 32
OIDC_KID = "fake-google-oidc-key"

Claims = dict[str, object]


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    *,
    issuer: x509.Certificate | None = None,
    issuer_key: rsa.RSAPrivateKey | None = None,
    ca: bool,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> x509.Certificate:
    """A certificate for `key`, self-signed unless an issuer (and its key) is given."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    start = not_before or datetime.now(UTC) - timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(issuer_key or key, hashes.SHA256())


def der_b64(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


def jwks_json(key: rsa.RSAPrivateKey, kid: str) -> str:
    numbers = key.public_key().public_numbers()

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    jwk = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": b64(numbers.n)}
    jwk["e"] = b64(numbers.e)
    return json.dumps({"keys": [{"kty": "EC", "kid": "ignored", "crv": "P-256"}, jwk]})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class FakeGoogle:
    """Google Cloud Attestation, as far as tokens go."""

    oidc_key: rsa.RSAPrivateKey
    root_key: rsa.RSAPrivateKey
    root: x509.Certificate
    intermediate_key: rsa.RSAPrivateKey
    intermediate: x509.Certificate
    leaf_key: rsa.RSAPrivateKey
    leaf: x509.Certificate

    @property
    def jwks_json(self) -> str:
        return jwks_json(self.oidc_key, OIDC_KID)

    @property
    def trust(self) -> TrustAnchors:
        return TrustAnchors(jwks=Jwks.from_json(self.jwks_json), pki_root=self.root)

    @property
    def x5c(self) -> list[str]:
        return [der_b64(self.leaf), der_b64(self.intermediate), der_b64(self.root)]

    def claims(
        self,
        *,
        audience: str = AUDIENCE,
        nonces: list[str] | None = None,
        now: datetime | None = None,
        **overrides: object,
    ) -> Claims:
        """The claims of a genuine production token, then `overrides` (None removes a claim)."""
        issued = int((now or datetime.now(UTC)).timestamp())
        claims: Claims = {
            "aud": audience,
            "exp": issued + 3600,
            "iat": issued,
            "iss": GOOGLE_ISSUER,
            "nbf": issued,
            "sub": "https://www.googleapis.com/compute/v1/projects/p/zones/z/instances/vm",
            "eat_nonce": [NONCE] if nonces is None else nonces,
            "eat_profile": "https://cloud.google.com/confidential-computing/confidential-space/docs/reference/token-claims",
            "secboot": True,
            "oemid": 11129,
            "hwmodel": "GCP_AMD_SEV",
            "swname": "CONFIDENTIAL_SPACE",
            "swversion": ["250301"],
            "dbgstat": "disabled-since-boot",
            "attester_tcb": ["INTEL"],
            "submods": {
                "confidential_space": {
                    "support_attributes": ["LATEST", "STABLE", "USABLE"],
                    "monitoring_enabled": {"memory": False},
                },
                "container": {
                    "image_reference": "us-docker.pkg.dev/p/r/conclave:latest",
                    "image_digest": IMAGE_DIGEST,
                    "restart_policy": "Never",
                    "image_id": "sha256:" + "cd" * 32,
                    "env": {"CONCLAVE_MODE": "tee"},
                    "args": ["conclave", "serve"],
                },
                "gce": {"zone": "us-central1-a", "project_id": "p", "instance_name": "vm"},
            },
            "google_service_accounts": ["sa@p.iam.gserviceaccount.com"],
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def oidc_token(
        self,
        claims: Claims | None = None,
        *,
        audience: str = AUDIENCE,
        nonces: list[str] | None = None,
        now: datetime | None = None,
        **overrides: object,
    ) -> str:
        return jwt.encode(
            claims or self.claims(audience=audience, nonces=nonces, now=now, **overrides),
            self.oidc_key,
            algorithm="RS256",
            headers={"kid": OIDC_KID, "typ": "JWT"},
        )

    def pki_token(
        self,
        claims: Claims | None = None,
        *,
        x5c: list[str] | None = None,
        key: rsa.RSAPrivateKey | None = None,
        audience: str = AUDIENCE,
        nonces: list[str] | None = None,
        now: datetime | None = None,
        **overrides: object,
    ) -> str:
        return jwt.encode(
            claims or self.claims(audience=audience, nonces=nonces, now=now, **overrides),
            key or self.leaf_key,
            algorithm="RS256",
            headers={"x5c": self.x5c if x5c is None else x5c, "typ": "JWT"},
        )


Behaviour = Literal["token", "error", "hang", "garbage", "chunked"]


@dataclass
class FakeLauncher:
    """The Confidential Space launcher's token endpoint on a Unix socket."""

    google: FakeGoogle
    socket_path: str
    behaviour: Behaviour = "token"
    error_body: str = "token request failed"
    claim_overrides: dict[str, object] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, object]]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    open_connections: int = 0
    connections: int = 0
    _closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        self._closed.clear()
        try:
            await self._serve(reader, writer)
            # Keep the connection open until the client closes it: the client must close it.
            await reader.read()
        finally:
            self.open_connections -= 1
            if self.open_connections == 0:
                self._closed.set()
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode().split("\r\n")
        method, path, _ = request_line.split(" ")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        payload = json.loads(body) if body else {}
        self.requests.append((method, path, payload))
        if self.behaviour == "hang":
            return
        if self.behaviour == "error":
            self._respond(writer, 400, self.error_body)
        elif self.behaviour == "garbage":
            self._respond(writer, 200, "<html>not a token</html>")
        else:
            token = self._mint(payload)
            if self.behaviour == "chunked":
                self._respond_chunked(writer, token)
            else:
                self._respond(writer, 200, token)
        await writer.drain()

    def _mint(self, request: dict[str, object]) -> str:
        audience = request["audience"]
        nonces = request["nonces"]
        assert isinstance(audience, str)
        assert isinstance(nonces, list)
        overrides = dict(self.claim_overrides)
        now = overrides.pop("now", None)
        assert now is None or isinstance(now, datetime)
        claims = self.google.claims(audience=audience, nonces=nonces, now=now, **overrides)
        if request["token_type"] == "PKI":
            token = self.google.pki_token(claims)
        else:
            token = self.google.oidc_token(claims)
        self.issued.append(token)
        return token

    @staticmethod
    def _respond(writer: asyncio.StreamWriter, status: int, body: str) -> None:
        data = body.encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: text/html\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )

    @staticmethod
    def _respond_chunked(writer: asyncio.StreamWriter, body: str) -> None:
        data = body.encode()
        chunks = [data[i : i + 700] for i in range(0, len(data), 700)]
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for chunk in chunks:
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        writer.write(b"0\r\n\r\n")

    async def wait_closed(self, timeout_s: float = 2.0) -> bool:
        """True once every connection the client opened has been closed by the client."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._closed.wait()
        return self.connections > 0 and self.open_connections == 0
