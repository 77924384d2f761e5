"""The outcome of a verification: every check, whether it held, and a plain-text rendering."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from conclave.attestation.claims import AttestationClaims, TokenType
from conclave.errors import AttestationVerificationError

UNPINNED_WORKLOAD = "WORKLOAD NOT PINNED"
"""Marks the image_digest check when no digest was expected: any container image passed."""


class CheckStatus(StrEnum):
    """How one check ended."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_CHECKED = "not_checked"
    """Not evaluated: an earlier failure (e.g. the signature) left nothing to trust."""
    NOT_APPLICABLE = "not_applicable"
    """The policy does not ask for it (e.g. no image digest expected)."""


class Check(BaseModel):
    """One named check and what was found."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    status: CheckStatus
    detail: str

    @property
    def ok(self) -> bool:
        """True unless the check failed or could not be made."""
        return self.status in (CheckStatus.PASSED, CheckStatus.NOT_APPLICABLE)


class VerificationReport(BaseModel):
    """Every check of a token (or a receipt and its token), in the order they were made.

    `ok` is true only when no check failed and none was left unchecked. `claims` is set only
    when the signature verified; unverified claims are never exposed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str = "token"
    checks: tuple[Check, ...]
    token_type: TokenType | None = None
    claims: AttestationClaims | None = None

    @property
    def ok(self) -> bool:
        """True when every check passed or did not apply."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        """The checks that failed (not those left unchecked because of them)."""
        return tuple(check for check in self.checks if check.status is CheckStatus.FAILED)

    @property
    def workload_pinned(self) -> bool:
        """False when the token verified but no image digest was required of it: the report
        then vouches for a TEE, not for which code ran in it."""
        return not any(
            check.name == "image_digest" and check.detail.startswith(UNPINNED_WORKLOAD)
            for check in self.checks
        )

    def check(self, name: str) -> Check:
        """The check called `name`; KeyError if the report has none."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def raise_for_failure(self) -> None:
        """Raise `AttestationVerificationError` (carrying this report) unless `ok`."""
        if not self.ok:
            names = ", ".join(check.name for check in self.failures) or "incomplete verification"
            raise AttestationVerificationError(
                f"{self.subject} verification failed: {names}", report=self
            )

    def render(self) -> str:
        """The report as plain text, one line per check, for a terminal or a log."""
        return render_report(self)


_MARKS = {
    CheckStatus.PASSED: "ok  ",
    CheckStatus.FAILED: "FAIL",
    CheckStatus.NOT_CHECKED: "--  ",
    CheckStatus.NOT_APPLICABLE: "n/a ",
}


def render_report(report: VerificationReport) -> str:
    """Plain text: a verdict line, then `[mark] name  detail` for every check."""
    failed = len(report.failures)
    unchecked = sum(check.status is CheckStatus.NOT_CHECKED for check in report.checks)
    if report.ok and not report.workload_pinned:
        verdict = f"VERIFIED, BUT THE {UNPINNED_WORKLOAD}"
    elif report.ok:
        verdict = "VERIFIED"
    elif failed:
        verdict = f"FAILED ({failed} of {len(report.checks)} checks failed)"
    else:
        verdict = f"INCOMPLETE ({unchecked} checks could not be made)"
    kind = f" ({report.token_type} token)" if report.token_type else ""
    lines = [f"{report.subject.capitalize()} verification{kind}: {verdict}"]
    width = max((len(check.name) for check in report.checks), default=0)
    lines.extend(
        f"  [{_MARKS[check.status]}] {check.name.ljust(width)}  {check.detail}"
        for check in report.checks
    )
    if report.claims is not None and not report.workload_pinned:
        lines.append(
            "WARNING: no image digest was given, so this proves a TEE ran some container, not "
            "which one: pass --image-digest sha256:... (and --require-image-digest to refuse "
            "receipts without one)"
        )
    return "\n".join(lines)
