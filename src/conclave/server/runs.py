"""Running consensus for requests: a slot under the concurrency cap, the engine's events, and
on the way out the transcript stored and counted. Every route goes through `ConsensusService`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing, suppress
from typing import TypeVar

from starlette.requests import Request

from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.events import (
    AggregateDelta,
    AggregateFinished,
    AggregateRestarted,
    ConsensusDone,
    ConsensusEvent,
    RunStarted,
)
from conclave.consensus.health import member_key
from conclave.consensus.transcript import Transcript
from conclave.errors import (
    ConclaveError,
    ConfigError,
    ConsensusError,
    MissingCredentialsError,
    ModelPackMissingError,
)
from conclave.server.api_errors import (
    ApiError,
    consensus_failed,
    internal_error,
    provider_not_ready,
    server_busy,
)
from conclave.server.catalog import Preset, PresetCatalog, grounded_name
from conclave.server.metrics import ServiceMetrics
from conclave.server.request_sampling import RequestSampling, SampledEngines
from conclave.server.security import Redactor
from conclave.server.transcript_store import TranscriptStore
from conclave.types import Message

T = TypeVar("T")

Finisher = Callable[[Transcript], Awaitable[Transcript]]
"""A last step on a finished run's transcript (e.g. holding its answer to a response format);
it may raise ConsensusError, which fails the run like a failed round."""

log = logging.getLogger("conclave.server")


class ClientGoneError(Exception):
    """The client disconnected before its answer was ready; the run was cancelled."""


class RunSlots:
    """The cap on concurrent runs. Taking a slot never waits: a full server answers 429."""

    def __init__(self, capacity: int, retry_after_s: int, metrics: ServiceMetrics) -> None:
        self.capacity = capacity
        self.in_use = 0
        self._retry_after_s = retry_after_s
        self._metrics = metrics

    def take(self) -> RunSlot:
        if self.in_use >= self.capacity:
            self._metrics.runs_rejected.inc()
            raise server_busy(self.capacity, self._retry_after_s)
        self.in_use += 1
        self._metrics.runs_in_flight.inc()
        return RunSlot(self)

    def _give_back(self) -> None:
        self.in_use -= 1
        self._metrics.runs_in_flight.dec()


class RunSlot:
    """One taken slot; `release()` may be called any number of times."""

    def __init__(self, slots: RunSlots) -> None:
        self._slots: RunSlots | None = slots

    def release(self) -> None:
        if self._slots is not None:
            self._slots._give_back()
            self._slots = None


class ConsensusService:
    """Starts runs for requests and sees each one through to its stored transcript."""

    def __init__(
        self,
        catalog: PresetCatalog,
        slots: RunSlots,
        store: TranscriptStore,
        metrics: ServiceMetrics,
        redact: Redactor,
    ) -> None:
        self.catalog = catalog
        self.slots = slots
        self.store = store
        self.metrics = metrics
        self.redact = redact
        self.sampled = SampledEngines()

    async def start(
        self,
        model: str,
        conversation: Sequence[Message],
        *,
        stream: bool,
        finish: Callable[[ConsensusEngine], Finisher] | None = None,
        sampling: RequestSampling | None = None,
        keep: bool = True,
        documents: str | None = None,
        aggregate_pieces: bool = True,
    ) -> ConsensusRun:
        """Resolve the preset, take a slot and start the run up to its first event, so that
        a request the engine refuses fails with a status, before any response is sent.
        `stream`: whether the events are read as they come, the aggregate's pieces too
        (otherwise one call, less CPU). `aggregate_pieces`: whether a streamed run's aggregate
        is wanted piece by piece (not when the answer is sent whole once checked, as a grounded
        chat completion's is). `finish`: given the run's engine, a last step applied to the
        transcript before it is stored. `sampling`: the request's options for every model
        call. `keep`: whether the run goes to the run store. `documents`: a document
        collection to ground the answer in.

        Raises ApiError: 404 unknown model or collection, 429 server full, 400 no user
        message."""
        preset = self.catalog.resolve(model)
        engine_name = preset.name
        if documents is not None:
            preset = self.catalog.grounded(preset, documents)
            engine_name = grounded_name(preset.name, documents)
        engine = self.sampled.engine(engine_name, preset.engine, sampling or RequestSampling())
        slot = self.slots.take()
        events = engine.run(conversation, stream_aggregate=stream and aggregate_pieces)
        finisher = finish(engine) if finish is not None else None
        run = ConsensusRun(self, preset, engine, events, slot, finisher, keep=keep, watched=stream)
        try:
            await run.prime()
        except BaseException:
            await run.aclose()
            raise
        return run


class ConsensusRun:
    """One run in flight. Consume `events()` once (or `transcript()`), then it closes itself;
    `aclose()` is for a run that is dropped unconsumed."""

    def __init__(
        self,
        service: ConsensusService,
        preset: Preset,
        engine: ConsensusEngine,
        events: AsyncGenerator[ConsensusEvent, None],
        slot: RunSlot,
        finisher: Finisher | None = None,
        *,
        keep: bool = True,
        watched: bool = True,
    ) -> None:
        """`watched`: whether anyone reads the events as they come (a stream); else only the
        transcript at the end is read, and only it is redacted."""
        self.preset = preset
        self._engine = engine
        self._watched = watched
        self._finisher = finisher
        self._keep = keep
        self._service = service
        self._engine_events = events
        self._stream = self._served(events)
        self._primed: list[ConsensusEvent] = []
        self._slot = slot
        self._finished = False

    @property
    def run_id(self) -> str:
        """The engine's id of this run (also its transcript's id)."""
        first = self._primed[0] if self._primed else None
        return first.run_id if isinstance(first, RunStarted) else ""

    async def prime(self) -> None:
        """Start the run up to its first event. A run that fails before any model is called
        raises its ApiError here, before a response is sent: a conversation the engine
        refuses (400), or every member resting after repeated failures (502, and not worth
        retrying now: see `consensus_failed`)."""
        self._primed.append(await anext(self._stream))
        if self._every_member_resting():
            async for event in self._stream:  # no model will be called: this ends at once
                self._primed.append(event)

    def _every_member_resting(self) -> bool:
        health = self._engine.health
        return all(health.resting(member_key(m.spec)) for m in self._engine.panel.members)

    async def events(self) -> AsyncGenerator[ConsensusEvent, None]:
        """The run's events (the first included); raises ApiError 502 when it fails."""
        try:
            primed, self._primed = self._primed, []
            for event in primed:
                yield event
            async for event in self._stream:
                yield event
        finally:  # also when the consumer stops early or the request is cancelled
            await self.aclose()

    async def _served(
        self, events: AsyncGenerator[ConsensusEvent, None]
    ) -> AsyncGenerator[ConsensusEvent, None]:
        """The engine's events as the service sends them: secrets redacted (a streamed
        aggregate's too; when nobody watches the events, only the transcript at the end), the
        finisher applied, the run counted and stored at its end, and a failure as the ApiError
        to answer."""
        try:
            pieces = self._service.redact.pieces()
            async for event in events:
                if not self._watched and not isinstance(event, ConsensusDone):
                    yield event  # read by no one (see `transcript`): not worth redacting
                    continue
                if isinstance(event, AggregateDelta):
                    safe = pieces.feed(event.text)
                    if safe:
                        yield AggregateDelta(round=event.round, text=safe)
                    continue
                if isinstance(event, AggregateRestarted):
                    pieces = self._service.redact.pieces()  # the held-back text is void too
                if isinstance(event, AggregateFinished) and (rest := pieces.flush()):
                    yield AggregateDelta(round=event.round, text=rest)
                if isinstance(event, ConsensusDone):
                    done = await self._finished_run(event)
                    await self._finish("ok", done.transcript)
                    yield done
                else:
                    yield self._service.redact.model(event)
        except ConfigError as exc:  # the engine refused the conversation: not a run
            self._finished = True
            raise ApiError(400, str(exc), param="messages", code="invalid_value") from None
        except ConsensusError as exc:
            transcript = exc.transcript and self._service.redact.model(exc.transcript)
            outcome = (transcript.stop_reason if transcript else None) or "error"
            await self._finish(outcome, transcript)
            log.info("run failed (preset %s): %s", self.preset.name, self._service.redact(str(exc)))
            raise consensus_failed(exc) from None
        except (MissingCredentialsError, ModelPackMissingError) as exc:
            await self._finish("error", None)
            raise provider_not_ready(str(exc)) from None
        except ConclaveError as exc:
            await self._finish("error", None)
            raise ApiError(500, str(exc), type="server_error", code="run_failed") from None
        except Exception as exc:
            # A bug below the service: streams still end with an error event, not cut off.
            await self._finish("error", None)
            error_id = uuid.uuid4().hex[:12]
            log.error(
                "internal error %s in a run (preset %s): %s: %s",
                error_id,
                self.preset.name,
                type(exc).__name__,
                self._service.redact(str(exc)),
            )
            raise internal_error(error_id) from None
        finally:
            if not self._finished:
                self._finished = True
                self._service.metrics.observe_run(self.preset.name, "cancelled", None)

    async def _finished_run(self, done: ConsensusDone) -> ConsensusDone:
        """The run's end, with its transcript's secrets redacted and the finisher applied."""
        redact = self._service.redact
        transcript = redact.model(done.transcript)
        if self._finisher is not None:
            transcript = redact.model(await self._finisher(transcript))
        return ConsensusDone(transcript=transcript)

    async def transcript(self) -> Transcript:
        """Run to the end and return the transcript (redacted, the finisher applied)."""
        async with aclosing(self.events()) as events:
            async for event in events:
                if isinstance(event, ConsensusDone):
                    return event.transcript
        raise AssertionError("the engine ended without a ConsensusDone event")  # pragma: no cover

    async def aclose(self) -> None:
        """Stop the engine (cancelling calls in flight) and give the slot back."""
        try:
            await self._stream.aclose()
            await self._engine_events.aclose()
        finally:
            self._slot.release()

    async def _finish(self, outcome: str, transcript: Transcript | None) -> None:
        self._finished = True
        self._service.metrics.observe_run(self.preset.name, outcome, transcript)
        if transcript is not None and self._keep:
            await self._service.store.put(transcript, preset=self.preset.name)


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it if the client hangs up first (a run nobody will read
    should not keep its slot and spend tokens). Raises ClientGoneError then."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise ClientGoneError
    return task.result()


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
