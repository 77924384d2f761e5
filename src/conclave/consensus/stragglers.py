"""How long a round waits for its stragglers once the quorum has answered.

A member far slower than it should be (a stalled upstream, retries behind a rate limit) should
not hold every request hostage: once `quorum` members have answered, the rest get a grace
period, then the round goes on without them and records them as `late`.

With `grace_s` set, that is the grace, for every member. Otherwise it is derived from latencies:
`grace_factor` times the slowest answer of the quorum (at least `grace_floor_s`), and never less
than `straggler_factor` times the member's own usual answer time. A panel mixes fast and slow
models (a 135M and a 0.5B model on the same CPU; a small and a large hosted model), so a member
slower than the quorum is not a straggler until it is also slower than itself; a member never
seen answering has no usual time and is waited for up to its timeout. An embedded member (its
provider's capabilities say `embedded`) is never left behind by the derived grace: its time is
this machine's own compute, which grows with its prompt and answer (improvement rounds are
longer), there is no upstream to stall, and the slowest local member is usually the strongest,
the one the panel most needs (measured: the embedded preset's Qwen 0.5B was cut in round 1 after
1.2 s). A fixed `grace_s` applies to every member.

Retries are bounded apart from this: whatever the grace above, a member still retrying when
`grace_s(...)` after the quorum has passed is left behind, and none starts a retry past it.
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
    factor: float = 0.5
    floor_s: float = 0.25
    straggler_factor: float = 2.0

    @classmethod
    def from_config(cls, config: ConsensusConfig) -> GracePolicy:
        return cls(
            fixed_s=config.grace_s,
            factor=config.grace_factor,
            floor_s=config.grace_floor_s,
            straggler_factor=config.straggler_factor,
        )

    def grace_s(self, quorum_latencies_s: Sequence[float]) -> float:
        """Seconds every member is waited for after the quorum answered, given how long the
        members that made the quorum took."""
        if self.fixed_s is not None:
            return self.fixed_s
        return max(self.floor_s, self.factor * max(quorum_latencies_s, default=0.0))

    def left_behind_at_s(
        self,
        quorum_at_s: float,
        quorum_latencies_s: Sequence[float],
        usual_s: float | None,
        *,
        embedded: bool = False,
    ) -> float | None:
        """Seconds into the round at which a member still running is left behind, given when
        the quorum was reached, the member's usual answer time and whether it runs embedded
        in this process; None: wait for it."""
        after_quorum = quorum_at_s + self.grace_s(quorum_latencies_s)
        if self.fixed_s is not None:
            return after_quorum
        if usual_s is None or embedded:
            return None
        return max(after_quorum, self.straggler_factor * usual_s)


def late_record(
    label: str, messages: Sequence[Message], *, ran_s: float, quorum_at_s: float
) -> CallRecord:
    """The record of a member the round stopped waiting for, `ran_s` seconds into it."""
    return CallRecord(
        model=label,
        role="member",
        messages=tuple(messages),
        error=CallError(
            type="late",
            message=(
                f"{label}: no answer after {ran_s:.2f} s, when the quorum had answered after "
                f"{quorum_at_s:.2f} s; the round went on without it"
            ),
        ),
        finish_reason="late",
        latency_s=ran_s,
    )
