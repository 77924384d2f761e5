"""What a verifier requires of an attestation token, as one frozen value."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from conclave.attestation.claims import CONFIDENTIAL_HWMODELS, GOOGLE_ISSUER

DEFAULT_AUDIENCE = "conclave-receipt"
"""The audience conclave requests receipt tokens for, unless the operator sets another."""


class AttestationPolicy(BaseModel):
    """The claims a token must carry to be trusted.

    The defaults are the strict ones: Google's issuer, a memory-encrypted Confidential VM,
    Secure Boot on, a production (non-debug) image, and no simulated tokens. Loosen a default
    only on purpose, e.g. `allow_debug=True` while testing on a debug image.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    audience: str = Field(default=DEFAULT_AUDIENCE, min_length=1)
    """The `aud` the token must carry: the audience the workload asked the launcher for."""
    issuer: str = GOOGLE_ISSUER
    """The `iss` of genuine tokens."""
    allowed_hwmodels: tuple[str, ...] = CONFIDENTIAL_HWMODELS
    """`hwmodel` values accepted."""
    require_secure_boot: bool = True
    """Refuse a token whose `secboot` is not true."""
    allow_debug: bool = False
    """Accept a debug image (`dbgstat` other than `disabled-since-boot`): its operator has root."""
    expected_image_digest: str | None = None
    """The workload container's `sha256:...` digest, when one is expected."""
    require_image_digest: bool = False
    """Fail, rather than only warn, when no `expected_image_digest` pins the workload."""
    required_support_attributes: tuple[str, ...] = ()
    """Support attributes the image must have, e.g. `("STABLE",)`; none by default."""
    allow_simulated: bool = False
    """Accept tokens from conclave's simulated mode (development only: anyone can make them)."""
    leeway_s: float = Field(default=30.0, ge=0.0, le=300.0)
    """Clock skew tolerated on `exp`, `nbf`/`iat` and certificate validity, in seconds."""

    @field_validator("expected_image_digest")
    @classmethod
    def _digest_form(cls, value: str | None) -> str | None:
        return None if value is None else normalize_digest(value)


def normalize_digest(digest: str) -> str:
    """`sha256:<hex>` in lower case, from either that form or the bare hex."""
    value = digest.strip().lower()
    return value if value.startswith("sha256:") else f"sha256:{value}"
