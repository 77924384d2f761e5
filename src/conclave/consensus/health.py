"""How each member has been doing: its usual answer time, and a circuit breaker that rests a
member that keeps failing, as LiteLLM's cooldowns do.

After `failures` consecutive failed calls a member's breaker opens: the member is skipped for
`cooldown_s` seconds, then one call is let through as a probe. A probe that answers closes the
breaker; a probe that fails opens it for another cooldown. A straggler the round left behind
has not failed (it was not waited for) and counts neither way. One `MemberHealth` is shared by
every run of an engine (in the server, by every request to a preset), so once its breaker is
open a dead upstream costs one failing call per cooldown instead of several per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from conclave.config import ModelSpec
from conclave.types import Frozen

Admission = Literal["call", "probe", "skip"]
"""What to do with a member this round: call it, call it as the one probe of an open breaker,
or skip it."""

BreakerState = Literal["closed", "open", "probing"]


class MemberHealthStatus(Frozen):
    """One member's breaker, as `/health` shows it."""

    member: str
    state: BreakerState
    consecutive_failures: int
    cooldown_left_s: float
    """Seconds until the next probe is let through (0 when closed or already due)."""
    times_opened: int
    usual_latency_s: float | None


USUAL_LATENCY_WEIGHT = 0.2
"""Weight of the newest answer in a member's usual answer time (an exponential average)."""


@dataclass
class _Breaker:
    consecutive_failures: int = 0
    open_until: float | None = None
    probing: bool = False
    times_opened: int = 0
    usual_latency_s: float | None = None


def member_key(spec: ModelSpec) -> str:
    """The name a member's health is kept under: the same model at the same place is one
    upstream, whichever panel or preset it sits in."""
    return spec.id if spec.base_url is None else f"{spec.id} at {spec.base_url}"


class MemberHealth:
    """The breakers of every member seen, keyed by `member_key`."""

    def __init__(
        self,
        *,
        failures: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or cooldown_s < 0:
            raise ValueError("failures must be at least 1 and cooldown_s not negative")
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._breakers: dict[str, _Breaker] = {}

    def admit(self, key: str) -> Admission:
        """Whether the member may be called now; a `probe` must be followed by `record` or
        `abandon`, or no other probe is let through."""
        breaker = self._breakers.get(key)
        if breaker is None or breaker.open_until is None:
            return "call"
        if breaker.probing or self._clock() < breaker.open_until:
            return "skip"
        breaker.probing = True
        return "probe"

    def resting(self, key: str) -> bool:
        """Whether the member is resting: its breaker open and its cooldown not over (`admit`
        would skip it), without claiming a probe."""
        breaker = self._breakers.get(key)
        if breaker is None or breaker.open_until is None:
            return False
        return breaker.probing or self._clock() < breaker.open_until

    def record(self, key: str, *, ok: bool, latency_s: float | None = None) -> None:
        """Count the outcome of a call: an answer (in `latency_s`) closes the breaker and
        updates the usual answer time, a failure counts towards opening the breaker (or, after a
        probe, opens it again at once)."""
        breaker = self._breakers.setdefault(key, _Breaker())
        breaker.probing = False
        if ok:
            breaker.consecutive_failures = 0
            breaker.open_until = None
            if latency_s is not None:
                usual = breaker.usual_latency_s
                breaker.usual_latency_s = (
                    latency_s
                    if usual is None
                    else usual + USUAL_LATENCY_WEIGHT * (latency_s - usual)
                )
            return
        breaker.consecutive_failures += 1
        was_open = breaker.open_until is not None
        if was_open or breaker.consecutive_failures >= self.failures:
            breaker.open_until = self._clock() + self.cooldown_s
            if not was_open:
                breaker.times_opened += 1

    def abandon(self, key: str) -> None:
        """A call let through was cancelled before it ended: its outcome says nothing, and the
        next call may probe."""
        breaker = self._breakers.get(key)
        if breaker is not None:
            breaker.probing = False

    def usual_latency_s(self, key: str) -> float | None:
        """The member's usual answer time (a recent average); None before its first answer."""
        breaker = self._breakers.get(key)
        return None if breaker is None else breaker.usual_latency_s

    def skip_reason(self, key: str) -> str:
        """Why a skipped member was skipped, for its transcript record."""
        breaker = self._breakers.get(key, _Breaker())
        left = max(0.0, (breaker.open_until or 0.0) - self._clock())
        if breaker.probing:
            return (
                f"resting after {breaker.consecutive_failures} failed calls in a row; "
                "another run is probing it now"
            )
        return (
            f"resting after {breaker.consecutive_failures} failed calls in a row; "
            f"probed again in {left:.1f} s"
        )

    def snapshot(self) -> tuple[MemberHealthStatus, ...]:
        """Every member's breaker, by name."""
        now = self._clock()
        statuses = []
        for key, breaker in sorted(self._breakers.items()):
            state: BreakerState = "closed"
            if breaker.open_until is not None:
                state = "probing" if breaker.probing else "open"
            statuses.append(
                MemberHealthStatus(
                    member=key,
                    state=state,
                    consecutive_failures=breaker.consecutive_failures,
                    cooldown_left_s=max(0.0, (breaker.open_until or now) - now),
                    times_opened=breaker.times_opened,
                    usual_latency_s=breaker.usual_latency_s,
                )
            )
        return tuple(statuses)
