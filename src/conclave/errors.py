"""conclave's exceptions, one hierarchy.

```
ConclaveError
├── ConfigError              the caller's mistake: a bad config file, flag or request
├── ModelPackMissingError    an embedded model pack is not installed (says how to install it)
├── MissingCredentialsError  an API key is not set (names the environment variable)
├── ProviderError            a model call failed at run time
│   ├── ProviderTimeoutError
│   ├── ProviderConnectionError
│   ├── RateLimitedError      429: slow down, retry after `retry_after_s`
│   ├── InsufficientCreditsError  402: the account has no credits left
│   ├── ProviderHTTPError     any other non-2xx status, with status and body
│   └── ProviderResponseError a 2xx answer that is not usable (garbage, empty choices)
├── ConsensusError           too few members answered (below quorum) or the aggregator failed
└── AttestationError         a TEE attestation could not be obtained, loaded or verified
    ├── AttestationRequestError  a token request that cannot be sent as given (also a ConfigError)
    ├── LauncherError            the Confidential Space launcher failed, timed out or is absent
    ├── TrustAnchorError         keys (JWKS) or a pinned root certificate could not be loaded
    ├── ReceiptFormatError       a receipt file that is not a readable conclave receipt
    └── AttestationVerificationError  a token or receipt failed verification; `.report` says why
```

Attestation errors never carry a token in their message.

Third-party exceptions (openai, llama.cpp) are translated into these once, at the provider
boundary; nothing above the providers sees them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conclave.attestation.verification_report import VerificationReport
    from conclave.consensus.transcript import Transcript


class ConclaveError(Exception):
    """Base of every error conclave raises on purpose."""


class ConfigError(ConclaveError):
    """A configuration, flag or request that cannot be used as given."""


class ModelPackMissingError(ConclaveError):
    """An embedded model pack is not installed; the message holds the exact install command."""


class MissingCredentialsError(ConclaveError):
    """A provider needs an API key that is not set; the message names the variable."""


class ProviderError(ConclaveError):
    """A model call that failed at run time."""

    def __init__(self, message: str, *, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model

    @property
    def kind(self) -> str:
        """A short, stable name of the failure, used in transcripts and metrics."""
        return _KIND_BY_CLASS.get(type(self), "provider_error")


class ProviderTimeoutError(ProviderError):
    """The call took longer than its timeout."""


class ProviderConnectionError(ProviderError):
    """The provider could not be reached."""


class ProviderHTTPError(ProviderError):
    """The provider answered with a non-success HTTP status."""

    def __init__(
        self, message: str, *, status_code: int, body: str = "", model: str | None = None
    ) -> None:
        super().__init__(message, model=model)
        self.status_code = status_code
        self.body = body


class RateLimitedError(ProviderHTTPError):
    """HTTP 429 after the retries ran out."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        body: str = "",
        model: str | None = None,
    ) -> None:
        super().__init__(message, status_code=429, body=body, model=model)
        self.retry_after_s = retry_after_s


class InsufficientCreditsError(ProviderHTTPError):
    """HTTP 402: the account or key has no credits left."""

    def __init__(self, message: str, *, body: str = "", model: str | None = None) -> None:
        super().__init__(message, status_code=402, body=body, model=model)


class ProviderResponseError(ProviderError):
    """A success status whose body is not a usable answer."""


class ConsensusError(ConclaveError):
    """The consensus could not be reached; `transcript` keeps everything that did happen.
    `retryable` is false when sending the same request again now would fail the same way
    (every member is resting after repeated failures), so a server can tell its client not
    to retry."""

    def __init__(
        self, message: str, *, transcript: Transcript | None = None, retryable: bool = True
    ) -> None:
        super().__init__(message)
        self.transcript = transcript
        self.retryable = retryable


class AttestationError(ConclaveError):
    """An attestation that could not be obtained, loaded or verified."""


class AttestationRequestError(AttestationError, ConfigError):
    """A token request that cannot be sent as given: a bad audience, nonce or token type."""


class LauncherError(AttestationError):
    """The Confidential Space launcher could not be reached, timed out or answered an error."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TrustAnchorError(AttestationError):
    """Verification keys (discovery document, JWKS) or a pinned root could not be loaded."""


class ReceiptFormatError(AttestationError):
    """A receipt or receipt file that cannot be read as a conclave receipt."""


class AttestationVerificationError(AttestationError):
    """A token or receipt that did not verify; `report` lists every check and its outcome."""

    def __init__(self, message: str, *, report: VerificationReport) -> None:
        super().__init__(message)
        self.report = report


_KIND_BY_CLASS: dict[type[ProviderError], str] = {
    ProviderTimeoutError: "timeout",
    ProviderConnectionError: "connection_error",
    ProviderHTTPError: "http_error",
    RateLimitedError: "rate_limited",
    InsufficientCreditsError: "insufficient_credits",
    ProviderResponseError: "bad_response",
}
