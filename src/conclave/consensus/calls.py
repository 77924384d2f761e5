"""The one path of every model call a run makes: the members', the aggregator's and its
fallback's, the reviews of `rank`, and the calls of any step (a grounding judge, a planner).

A call is
- bounded by a deadline that includes its retries (`Deadline`; the providers' retries do
  not start a wait that would end past it);
- admitted by its model's circuit breaker (`MemberHealth`, shared by every run of an engine
  and keyed by upstream, so that a model that is both a member and the aggregator is one
  breaker): a model resting after repeated failures is not called, and its record says why;
- recorded as a `CallRecord`, whatever happens;
- counted by the breaker: an answer closes it, a failure counts towards opening it, a call
  cancelled before it ended (a straggler left behind) counts neither way.

One error policy: any exception a call raises is that call's failure, recorded with its kind
(`records.failed_record`), never the run's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence
from types import TracebackType

from conclave.consensus.health import Admission, MemberHealth, member_key
from conclave.consensus.panel import Member
from conclave.consensus.records import call_record, failed_record
from conclave.consensus.transcript import CallError, CallRecord, CallRole
from conclave.errors import ProviderError, ProviderTimeoutError
from conclave.providers.retries import CallBounds, RetryWatch
from conclave.types import Completion, Message, TextDelta


class Deadline:
    """Bound a call in time, its retries included, and let `watch` (when given) see and bound
    those retries; overrunning raises ProviderTimeoutError naming the model.

    One object around every model call: one `asyncio.Timeout` and one `CallBounds`, entered
    and left directly rather than through nested generator-based context managers."""

    __slots__ = ("_bounds", "_label", "_timeout", "_timeout_s")

    def __init__(self, timeout_s: float, label: str, watch: RetryWatch | None = None) -> None:
        self._timeout_s = timeout_s
        self._label = label
        self._timeout = asyncio.timeout(timeout_s)
        self._bounds = CallBounds(timeout_s, watch)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()
        self._bounds.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._bounds.__exit__()
        try:
            await self._timeout.__aexit__(exc_type, exc, traceback)
        except TimeoutError:
            pass
        else:
            if not isinstance(exc, TimeoutError):
                return
        raise ProviderTimeoutError(
            f"{self._label}: no answer within {self._timeout_s:g} s", model=self._label
        ) from None


async def ask_member(
    member: Member,
    role: CallRole,
    messages: Sequence[Message],
    timeout_s: float,
    *,
    label: str | None = None,
    watch: RetryWatch | None = None,
) -> CallRecord:
    """One call of `member` bounded by `timeout_s`, as its record (under `label`, by default
    the member's): answered, or failed with whatever it raised. No breaker: `ModelCalls.ask`
    is this call within a run."""
    label = label or member.label
    started = time.perf_counter()
    try:
        async with Deadline(timeout_s, label, watch or RetryWatch()):
            completion = await member.complete(messages)
    except Exception as exc:  # any failure of a call is that call's
        return failed_record(label, role, messages, exc, started)
    return call_record(label, role, messages, completion, time.perf_counter() - started)


def skipped_record(label: str, role: CallRole, reason: str) -> CallRecord:
    """The record of a call not made because its model's breaker is open."""
    return CallRecord(
        model=label,
        role=role,
        error=CallError(type="cooldown", message=f"{label}: not called: {reason}"),
        finish_reason="skipped",
    )


class ModelCalls:
    """Model calls within a run: bounded, admitted by the breakers of `health`, recorded and
    counted. `timeout_s` is the run's own; a model's `timeout_s` replaces it for that model."""

    def __init__(self, health: MemberHealth, *, timeout_s: float) -> None:
        self.health = health
        self._timeout_s = timeout_s

    def timeout_for(self, member: Member) -> float:
        """Seconds a call of `member` may take, its retries included."""
        return member.spec.timeout_s or self._timeout_s

    def admit(self, member: Member) -> Admission:
        """Whether `member` may be called now (see `MemberHealth.admit`); a `probe` must be
        made (through `ask` or `stream` with `admitted`), or no other probe is let through."""
        return self.health.admit(member_key(member.spec))

    def resting(self, member: Member) -> bool:
        """Whether `member`'s breaker is open and its cooldown not over (it would be skipped)."""
        return self.health.resting(member_key(member.spec))

    def skipped(self, member: Member, role: CallRole, *, label: str | None = None) -> CallRecord:
        """The record of a call of `member` not made because it is resting."""
        reason = self.health.skip_reason(member_key(member.spec))
        return skipped_record(label or member.label, role, reason)

    async def ask(
        self,
        member: Member,
        role: CallRole,
        messages: Sequence[Message],
        *,
        label: str | None = None,
        admitted: Admission | None = None,
        watch: RetryWatch | None = None,
    ) -> CallRecord:
        """One call of `member`, as its record. Admitted by its breaker here unless the caller
        already did (`admitted`); a resting member is not called (its record says why)."""
        admission = admitted or self.admit(member)
        if admission == "skip":
            return self.skipped(member, role, label=label)
        key = member_key(member.spec)
        try:
            record = await ask_member(
                member, role, messages, self.timeout_for(member), label=label, watch=watch
            )
        except BaseException:  # cancelled: not an outcome of the call
            self.health.abandon(key)
            raise
        self.health.record(key, ok=record.ok, latency_s=record.latency_s)
        return record

    async def stream(
        self,
        member: Member,
        role: CallRole,
        messages: Sequence[Message],
        *,
        label: str | None = None,
    ) -> AsyncGenerator[TextDelta | CallRecord, None]:
        """One streamed call of `member`: its text as TextDelta pieces as they come, then
        exactly one CallRecord (a failed one after some pieces voids them)."""
        label = label or member.label
        if self.admit(member) == "skip":
            yield self.skipped(member, role, label=label)
            return
        key = member_key(member.spec)
        started = time.perf_counter()
        completion: Completion | None = None
        try:
            async with Deadline(self.timeout_for(member), label):
                async for item in member.stream(messages):
                    if isinstance(item, TextDelta):
                        yield item
                    else:
                        completion = item
        except Exception as exc:  # any failure of a call is that call's
            record = failed_record(label, role, messages, exc, started)
        except BaseException:  # cancelled, or the reader stopped: not an outcome of the call
            self.health.abandon(key)
            raise
        else:
            if completion is None:
                ended = ProviderError(f"{label}: the stream ended without a final answer")
                record = failed_record(label, role, messages, ended, started)
            else:
                latency_s = time.perf_counter() - started
                record = call_record(label, role, messages, completion, latency_s)
        self.health.record(key, ok=record.ok, latency_s=record.latency_s)
        yield record
