"""The claims of a Confidential Space attestation token, typed.

The shape follows Google's "Attestation token claims" reference: registered JWT claims (`iss`,
`aud`, `exp`, `iat`, `nbf`, `sub`), the EAT claims (`eat_nonce`, `eat_profile`, `secboot`,
`oemid`, `hwmodel`, `swname`, `swversion`, `dbgstat`, `attester_tcb`) and the `submods` for the
workload container, the Confidential Space image and the GCE instance. Only the claims that are
checked or shown are typed; the others (`env`, `args`, `attester_tcb`, ...) are ignored, not
refused, so that a claim Google adds or reshapes never makes a genuine token fail to parse.

A simulated token (conclave's development mode) has the same shape, the issuer
`SIMULATED_ISSUER` and the extra claim `conclave_simulated: true`.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

GOOGLE_ISSUER: Final = "https://confidentialcomputing.googleapis.com"
"""The issuer of Confidential Space attestation tokens (Google Cloud Attestation)."""

SIMULATED_ISSUER: Final = "https://simulated-attestation.conclave.invalid"
"""The issuer of conclave's simulated tokens; `.invalid` can never resolve to a real host."""

SIMULATED_KID_PREFIX: Final = "conclave-simulated-"
"""Every simulated signing key's id starts so: a verifier knows the key is a development one,
whatever the token it signed claims."""
SIMULATED_ORGANIZATION: Final = "conclave (SIMULATED)"
"""The organisation of every simulated root certificate, for the same reason."""

SIMULATED_CLAIM: Final = "conclave_simulated"
"""The claim, set to true, that marks a token as simulated."""

CONFIDENTIAL_SPACE_SWNAME: Final = "CONFIDENTIAL_SPACE"
"""The `swname` of every Confidential Space image."""

DEBUG_DISABLED: Final = "disabled-since-boot"
"""The `dbgstat` of a production image; a debug image says `enabled`."""

CONFIDENTIAL_HWMODELS: Final = ("GCP_AMD_SEV", "GCP_AMD_SEV_SNP", "GCP_INTEL_TDX")
"""The `hwmodel` values of memory-encrypted Confidential VMs (not plain Shielded VMs)."""

TokenType = Literal["OIDC", "PKI"]
"""How a token is signed: OIDC (key in the issuer's JWKS) or PKI (x5c chain to a root)."""


class _Claims(BaseModel):
    # strict: a claim of the wrong JSON type ("exp": "soon") is refused, never coerced.
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class ContainerClaims(_Claims):
    """`submods.container`: the workload container the launcher ran."""

    image_reference: str | None = None
    image_digest: str | None = None
    image_id: str | None = None
    restart_policy: str | None = None


class ConfidentialSpaceClaims(_Claims):
    """`submods.confidential_space`: the Confidential Space image's support state."""

    support_attributes: tuple[str, ...] = ()


class GceClaims(_Claims):
    """`submods.gce`: the VM instance."""

    zone: str | None = None
    project_id: str | None = None
    project_number: str | None = None
    instance_name: str | None = None
    instance_id: str | None = None


class Submods(_Claims):
    """The per-component claims."""

    container: ContainerClaims = ContainerClaims()
    confidential_space: ConfidentialSpaceClaims = ConfidentialSpaceClaims()
    gce: GceClaims = GceClaims()


class AttestationClaims(_Claims):
    """The payload of an attestation token. Only read from a token whose signature verified.

    Parse it with `AttestationClaims.model_validate_json(payload)`: in strict mode JSON arrays
    become tuples and every claim must have its JSON type.
    """

    iss: str
    aud: str | tuple[str, ...]
    exp: float
    iat: float
    nbf: float | None = None
    sub: str | None = None
    eat_nonce: str | tuple[str, ...] = ()
    eat_profile: str | None = None
    secboot: bool | None = None
    oemid: int | None = None
    hwmodel: str | None = None
    swname: str | None = None
    swversion: tuple[str, ...] = ()
    dbgstat: str | None = None
    submods: Submods = Submods()
    conclave_simulated: bool = False

    @property
    def audiences(self) -> tuple[str, ...]:
        """`aud` as a tuple, whether the token wrote one string or a list."""
        return (self.aud,) if isinstance(self.aud, str) else self.aud

    @property
    def nonces(self) -> tuple[str, ...]:
        """`eat_nonce` as a tuple, whether the token wrote one string or a list."""
        return (self.eat_nonce,) if isinstance(self.eat_nonce, str) else self.eat_nonce

    @property
    def simulated(self) -> bool:
        """True when the token says it was made by conclave's simulated mode."""
        return self.conclave_simulated or self.iss == SIMULATED_ISSUER
