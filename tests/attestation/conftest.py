"""Fixtures: the fake issuer (Google Cloud Attestation) and the fake launcher (see
`attestation_fakes`)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .attestation_fakes import FakeGoogle, FakeLauncher, make_certificate, new_key


@pytest.fixture(scope="session")
def google() -> FakeGoogle:
    root_key, intermediate_key, leaf_key = new_key(), new_key(), new_key()
    root = make_certificate("Fake Confidential Space Root", root_key, ca=True)
    intermediate = make_certificate(
        "Fake Confidential Space Intermediate",
        intermediate_key,
        issuer=root,
        issuer_key=root_key,
        ca=True,
    )
    leaf = make_certificate(
        "Fake Confidential Space Signer",
        leaf_key,
        issuer=intermediate,
        issuer_key=intermediate_key,
        ca=False,
    )
    return FakeGoogle(
        oidc_key=new_key(),
        root_key=root_key,
        root=root,
        intermediate_key=intermediate_key,
        intermediate=intermediate,
        leaf_key=leaf_key,
        leaf=leaf,
    )


@pytest.fixture(scope="session")
def stranger_key() -> rsa.RSAPrivateKey:
    """A key nobody trusts."""
    return new_key()


@pytest.fixture
def anchor_files(google: FakeGoogle, tmp_path: Path) -> tuple[Path, Path]:
    """The fake issuer's JWKS and root certificate (PEM), saved as a verifier would keep them."""
    jwks_path = tmp_path / "jwks.json"
    jwks_path.write_text(google.jwks_json)
    root_path = tmp_path / "root.pem"
    root_path.write_bytes(google.root.public_bytes(serialization.Encoding.PEM))
    return jwks_path, root_path


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # Unix socket paths are limited to ~107 bytes: pytest's tmp_path can be longer.
    directory = Path(tempfile.mkdtemp(prefix="cl-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def launcher(google: FakeGoogle, socket_dir: Path) -> AsyncIterator[FakeLauncher]:
    fake = FakeLauncher(google=google, socket_path=str(socket_dir / "teeserver.sock"))
    server = await asyncio.start_unix_server(fake.handle, path=fake.socket_path)
    try:
        yield fake
    finally:
        server.close()
        await server.wait_closed()
