"""Prometheus metrics of one app instance, in its own registry (no process-wide state).

Under `conclave serve --workers N` each worker records into prometheus_client's
multiprocess files and `/metrics` reports the sum over the workers.

HTTP: requests by route and status, latency, connections closed on a slow client. Consensus:
runs by outcome, run time, runs in flight and rejected, and per model call: failures by type
(`late`: a straggler the round stopped waiting for; `cooldown`: a resting member not called),
tokens and cost. Members: each one's breaker, read when `/metrics` is scraped.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as CounterMetric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from conclave.consensus.health import MemberHealthStatus
from conclave.consensus.transcript import CallRecord, Transcript
from conclave.server.schemas import FALLBACKS, PresetBreakers

CONTENT_TYPE = CONTENT_TYPE_LATEST

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""Set (before prometheus_client is imported) in each worker of a multi-process server: the
values then live in files there, and `/metrics` sums every worker's."""

_LATENCY_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class ServiceMetrics:
    """Every metric the service exports."""

    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = CounterMetric(
            "conclave_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "conclave_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response (streams included).",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.timeouts = CounterMetric(
            "conclave_http_timeouts",
            "Connections closed because a client was too slow, by phase: request_head (its "
            "headers did not arrive in time), request_body (408: its body did not), "
            "response_write (it did not read the response).",
            ["phase"],
            registry=r,
        )
        self.runs = CounterMetric(
            "conclave_consensus_runs",
            "Consensus runs finished, by preset and outcome "
            "(ok, quorum_lost, aggregator_failed, cancelled, error).",
            ["preset", "outcome"],
            registry=r,
        )
        self.run_seconds = Histogram(
            "conclave_consensus_run_duration_seconds",
            "Wall time of a consensus run.",
            ["preset"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.runs_in_flight = Gauge(
            "conclave_consensus_runs_in_flight",
            "Consensus runs running now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.runs_rejected = CounterMetric(
            "conclave_consensus_runs_rejected",
            "Requests answered 429 because the cap on concurrent runs was reached.",
            registry=r,
        )
        self.calls = CounterMetric(
            "conclave_model_calls",
            "Model calls made by runs, by preset, model, role (member, aggregator), outcome.",
            ["preset", "model", "role", "outcome"],
            registry=r,
        )
        self.call_failures = CounterMetric(
            "conclave_model_call_failures",
            "Failed model calls by type (timeout, rate_limited, http_error, ...).",
            ["preset", "model", "role", "type"],
            registry=r,
        )
        self.tokens = CounterMetric(
            "conclave_tokens",
            "Tokens used by model calls, by kind (prompt, completion).",
            ["preset", "model", "kind"],
            registry=r,
        )
        self.cost = CounterMetric(
            "conclave_cost_usd",
            "Cost in US dollars reported by the providers.",
            ["preset", "model"],
            registry=r,
        )

        self.member_resting = self._member_gauge(
            "conclave_member_resting",
            "1 while a member's breaker is open (skipped after repeated failures), else 0.",
        )
        self.member_consecutive_failures = self._member_gauge(
            "conclave_member_consecutive_failures", "Failed calls in a row of each member."
        )
        self.member_times_rested = self._member_gauge(
            "conclave_member_times_rested",
            "How many times each member's breaker has opened since the server started.",
        )

        self.aggregator_resting = self._aggregator_gauge(
            "conclave_aggregator_resting",
            "1 while the breaker of a preset's aggregator (or fallback aggregator) is open: "
            "a fallback writes the consensus meanwhile; else 0.",
        )
        self.aggregator_times_rested = self._aggregator_gauge(
            "conclave_aggregator_times_rested",
            "How many times the aggregator's (or fallback aggregator's) breaker has opened.",
        )
        self.fallbacks = CounterMetric(
            "conclave_consensus_fallbacks",
            "Rounds whose consensus a fallback wrote because the aggregator failed or rested, "
            "by preset and fallback (fallback_aggregator, fallback_vote, previous_round).",
            ["preset", "decided_by"],
            registry=r,
        )

    def _aggregator_gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(
            name,
            documentation,
            ["preset", "role", "model"],
            registry=self.registry,
            multiprocess_mode="max",
        )

    def _member_gauge(self, name: str, documentation: str) -> Gauge:
        """A gauge per preset and member, set from the breakers when `/metrics` is read; over
        several worker processes the highest value is reported."""
        return Gauge(
            name,
            documentation,
            ["preset", "member"],
            registry=self.registry,
            multiprocess_mode="max",
        )

    def observe_breakers(self, preset: str, breakers: PresetBreakers) -> None:
        """Set the breaker gauges of a preset from its current state."""
        for status in breakers.members:
            labels = (preset, status.member)
            self.member_resting.labels(*labels).set(_resting(status))
            self.member_consecutive_failures.labels(*labels).set(status.consecutive_failures)
            self.member_times_rested.labels(*labels).set(status.times_opened)
        combiners = (
            ("aggregator", breakers.aggregator),
            ("fallback_aggregator", breakers.fallback_aggregator),
        )
        for role, combiner in combiners:
            if combiner is not None:
                which = (preset, role, combiner.member)
                self.aggregator_resting.labels(*which).set(_resting(combiner))
                self.aggregator_times_rested.labels(*which).set(combiner.times_opened)

    def observe_run(self, preset: str, outcome: str, transcript: Transcript | None) -> None:
        """Count a finished run and every call of its transcript (each distinct set of labels
        once, with its total: a run repeats the same few)."""
        self.labelled(self.runs, preset, outcome).inc()
        if transcript is None:
            return
        self.labelled(self.run_seconds, preset).observe(transcript.duration_s)
        counts: defaultdict[tuple[CounterMetric, tuple[str, ...]], float] = defaultdict(float)
        for record in transcript.rounds:
            if record.decided_by in FALLBACKS:
                counts[(self.fallbacks, (preset, record.decided_by))] += 1
        for _, call in transcript.calls():
            self._count_call(counts, preset, call)
        for (metric, labels), amount in counts.items():
            self.labelled(metric, *labels).inc(amount)

    def _count_call(
        self,
        counts: defaultdict[tuple[CounterMetric, tuple[str, ...]], float],
        preset: str,
        call: CallRecord,
    ) -> None:
        outcome = "ok" if call.error is None else "failed"
        counts[(self.calls, (preset, call.model, call.role, outcome))] += 1
        if call.error is not None:
            counts[(self.call_failures, (preset, call.model, call.role, call.error.type))] += 1
        usage = call.usage
        if usage.prompt_tokens:
            counts[(self.tokens, (preset, call.model, "prompt"))] += usage.prompt_tokens
        if usage.completion_tokens:
            counts[(self.tokens, (preset, call.model, "completion"))] += usage.completion_tokens
        if usage.cost_usd:
            counts[(self.cost, (preset, call.model))] += usage.cost_usd

    def labelled(self, metric: CounterMetric | Histogram, *labels: str) -> Any:
        """`metric.labels(*labels)`, looked up once (prometheus_client's own lookup checks
        and locks every time)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def render(self) -> bytes:
        directory = os.environ.get(MULTIPROCESS_VARIABLE)
        if directory:
            every_worker = CollectorRegistry()
            MultiProcessCollector(every_worker, path=directory)  # type: ignore[no-untyped-call]
            return generate_latest(every_worker)
        return generate_latest(self.registry)


def _resting(status: MemberHealthStatus) -> int:
    return 0 if status.state == "closed" else 1
