"""How long a round waits for its stragglers once the quorum has answered.

A member far slower than the others (a stalled upstream, retries behind a rate limit) should
not hold every request hostage: once `quorum` members have answered, the rest get a grace
period, then the round goes on without them and records them as `late`. The grace is
`grace_s` when the config sets it, otherwise `grace_factor` times the slowest answer of the
quorum, and at least `grace_floor_s`: a member is a straggler when it takes that much longer
than the quorum took, however fast or slow the models are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from conclave.config import ConsensusConfig
from conclave.consensus.transcript import CallError, CallRecord
from conclave.types import Message


@dataclass(frozen=True)
class GracePolicy:
    """The wait for the rest of a round after its quorum answered."""

    fixed_s: float | None = None
    factor: float = 2.0
    floor_s: float = 1.0

    @classmethod
    def from_config(cls, config: ConsensusConfig) -> GracePolicy:
        return cls(fixed_s=config.grace_s, factor=config.grace_factor, floor_s=config.grace_floor_s)

    def grace_s(self, quorum_latencies_s: Sequence[float]) -> float:
        """Seconds to wait, given how long the members that made the quorum took."""
        if self.fixed_s is not None:
            return self.fixed_s
        return max(self.floor_s, self.factor * max(quorum_latencies_s, default=0.0))


def late_record(
    label: str, messages: Sequence[Message], *, ran_s: float, grace_s: float
) -> CallRecord:
    """The record of a member the round stopped waiting for."""
    return CallRecord(
        model=label,
        role="member",
        messages=tuple(messages),
        error=CallError(
            type="late",
            message=(
                f"{label}: no answer after {ran_s:.2f} s, {grace_s:.2f} s after the quorum "
                "answered; the round went on without it"
            ),
        ),
        finish_reason="late",
        latency_s=ran_s,
    )


def skipped_record(label: str, reason: str) -> CallRecord:
    """The record of a member not called this round because its breaker is open."""
    return CallRecord(
        model=label,
        role="member",
        error=CallError(type="cooldown", message=f"{label}: not called: {reason}"),
        finish_reason="skipped",
    )
