"""The ingest service's own Prometheus metrics, on the container's registry.

Label values are bounded everywhere: event types are the three of the
contract (or "other"), reasons a fixed list, routes are templates such as
`/api/miners/{miner}/stats` (never raw paths), statuses HTTP codes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from enum import StrEnum
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.ingest.domain.live import RecordSource, StreamLimit
from services.ingest.domain.live_records import Kind
from shared.http.auth import AuthFailure, Limit, Scope
from shared.http.guard import BodyRefusal
from shared.http.protocol import ConnectionLimits

_LATENCY_BUCKETS_S: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)
_BATCH_EVENTS_BUCKETS: Final = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000)
_BATCH_BYTES_BUCKETS: Final = tuple(float(2**n) for n in range(10, 25, 2))  # 1 KiB .. 16 MiB


class RejectReason(StrEnum):
    INVALID = "invalid"  # 422: validation failed (any event of the batch)
    TOO_LARGE = "too_large"  # 413: too many events or bytes
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"  # 415
    KAFKA_UNAVAILABLE = "kafka_unavailable"  # 503: not acknowledged, retriable
    DELIVERY_FAILED = "delivery_failed"  # not acknowledged, not retriable


class IngestTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        # Other parts of the service (metrics persister, plugins) add their own metrics here.
        self.registry = registry
        self.events_received = Counter(
            "chimera_ingest_events_received", "Events received in POST /v1/events bodies, by type",
            ["type"], registry=registry,
        )
        self.events_accepted = Counter(
            "chimera_ingest_events_accepted",
            "Events acknowledged by Kafka and answered 202, by type", ["type"], registry=registry,
        )
        self.events_rejected = Counter(
            "chimera_ingest_events_rejected", "Events of refused batches, by type and reason",
            ["type", "reason"], registry=registry,
        )
        self.batches_rejected = Counter(
            "chimera_ingest_batches_rejected",
            "Refused POST /v1/events requests, by reason (also those whose events cannot be counted)",
            ["reason"], registry=registry,
        )
        self.batch_events = Histogram(
            "chimera_ingest_batch_events", "Events per valid POST /v1/events batch",
            buckets=_BATCH_EVENTS_BUCKETS, registry=registry,
        )
        self.batch_bytes = Histogram(
            "chimera_ingest_batch_bytes", "Body size of POST /v1/events requests read in full",
            buckets=_BATCH_BYTES_BUCKETS, registry=registry,
        )
        self.request_duration_s = Histogram(
            "chimera_http_request_duration_seconds",
            "HTTP request latency by method, route template and status",
            ["method", "route", "status"], buckets=_LATENCY_BUCKETS_S, registry=registry,
        )
        self.requests_in_flight = Gauge(
            "chimera_http_requests_in_flight", "HTTP requests being served", registry=registry,
        )
        self.produce_duration_s = Histogram(
            "chimera_kafka_produce_duration_seconds",
            "Time from sending a batch to Kafka until every record is acknowledged (or failed)",
            ["outcome"], buckets=_LATENCY_BUCKETS_S, registry=registry,
        )
        self.kafka_connected = Gauge(
            "chimera_kafka_producer_connected", "1 while the ingest producer is connected",
            registry=registry,
        )
        self.kafka_reconnects = Counter(
            "chimera_kafka_producer_connects", "Successful producer (re)connections",
            registry=registry,
        )
        # Security signals (the seed's security alerts): bounded labels, every value pre-created
        # so a rate() over them exists before the first event.
        self.auth_failures = Counter(
            "chimera_api_auth_failures",
            "Requests refused by authentication: no key, a malformed header, an unknown, revoked or expired key",
            ["reason"], registry=registry,
        )
        self.auth_forbidden = Counter(
            "chimera_api_auth_forbidden", "Requests refused because the key lacks the route's scope",
            ["scope"], registry=registry,
        )
        self.rate_limited = Counter(
            "chimera_api_rate_limited",
            "Requests answered 429: over a key's request rate, or from an address that failed "
            "authentication too often",
            ["limit"], registry=registry,
        )
        self.bodies_refused = Counter(
            "chimera_http_bodies_refused",
            "Request bodies refused before they were read in full: over the route's limit (413) or too slow (408)",
            ["reason"], registry=registry,
        )
        self._live_metrics(registry)
        for reason in AuthFailure:
            self.auth_failures.labels(reason.value)
        for scope in Scope:
            self.auth_forbidden.labels(scope.value)
        for limit in Limit:
            self.rate_limited.labels(limit.value)
        for refusal in BodyRefusal:
            self.bodies_refused.labels(refusal.value)

    def _live_metrics(self, registry: CollectorRegistry) -> None:
        """The console's live feed and streams (/live, services/ingest/domain/live.py)."""
        self.live_streams_open = Gauge(
            "chimera_live_streams_open", "Open /live event streams in this process", registry=registry)
        self.live_streams_refused = Counter(
            "chimera_live_streams_refused",
            "/live streams answered 429: over LIVE_MAX_STREAMS (process) or LIVE_MAX_STREAMS_PER_CLIENT (client)",
            ["limit"], registry=registry)
        self.live_records_sent = Counter(
            "chimera_live_records_sent", "Records written to /live streams, by event", ["event"], registry=registry)
        self.live_records_coalesced = Counter(
            "chimera_live_records_coalesced",
            "Records a /live stream never sent: replaced by a newer one of the same key while queued, or "
            "dropped past LIVE_QUEUE_RECORDS (a slow client)", registry=registry)
        self.live_records_malformed = Counter(
            "chimera_live_records_malformed", "Snapshot or alert records that failed their checks and were skipped",
            ["source"], registry=registry)
        self.live_records_untracked = Counter(
            "chimera_live_records_untracked",
            "Pool or miner records past LIVE_MAX_POOLS / LIVE_MAX_MINERS: forwarded, not kept for the miners list",
            registry=registry)
        self.live_feed_records = Counter(
            "chimera_live_feed_records", "Records the live feed read from Kafka, by source", ["source"],
            registry=registry)
        self.live_feed_failures = Counter(
            "chimera_live_feed_failures", "Kafka errors of the live feed (it reconnects after a backoff)",
            registry=registry)
        self.live_feed_crashes = Counter(
            "chimera_live_feed_crashes", "The live feed's task ended on an unexpected error (no live figures "
            "until the process restarts)", registry=registry)
        for source in RecordSource:
            self.live_records_malformed.labels(source.value)
            self.live_feed_records.labels(source.value)
        for stream_limit in StreamLimit:
            self.live_streams_refused.labels(stream_limit.value)
        for kind in Kind:
            self.live_records_sent.labels(kind.value)

    def watch_live_streams(self, open_streams: Callable[[], int]) -> None:
        self.live_streams_open.set_function(open_streams)

    # --- services.ingest.domain.live.LiveObserver and adapters.live_feed.FeedObserver ---

    def malformed(self, source: RecordSource) -> None:
        self.live_records_malformed.labels(source.value).inc()

    def coalesced(self, records: int) -> None:
        self.live_records_coalesced.inc(records)

    def untracked(self) -> None:
        self.live_records_untracked.inc()

    def feed_records(self, source: RecordSource, records: int) -> None:
        self.live_feed_records.labels(source.value).inc(records)

    def feed_failed(self) -> None:
        self.live_feed_failures.inc()

    def feed_crashed(self) -> None:
        self.live_feed_crashes.inc()

    def stream_refused(self, limit: StreamLimit) -> None:
        self.live_streams_refused.labels(limit.value).inc()

    def record_sent(self, kind: Kind) -> None:
        self.live_records_sent.labels(kind.value).inc()

    def received(self, counts: Mapping[str, int]) -> None:
        for kind, n in counts.items():
            self.events_received.labels(kind).inc(n)

    def accepted(self, counts: Mapping[str, int]) -> None:
        for kind, n in counts.items():
            self.events_accepted.labels(kind).inc(n)

    def watch_connections(self, limits: ConnectionLimits) -> None:
        """Export the server's connection figures (the protocol keeps them as plain counts)."""
        self.registry.register(_ConnectionCollector(limits))

    # --- shared.http.auth.AuthObserver and shared.http.guard.BodyObserver ---

    def auth_failed(self, reason: AuthFailure) -> None:
        self.auth_failures.labels(reason.value).inc()

    def forbidden(self, scope: Scope) -> None:
        self.auth_forbidden.labels(scope.value).inc()

    def rate_limited_by(self, limit: Limit) -> None:
        self.rate_limited.labels(limit.value).inc()

    def body_refused(self, refusal: BodyRefusal) -> None:
        self.bodies_refused.labels(refusal.value).inc()

    def rejected(self, reason: RejectReason, counts: Mapping[str, int]) -> None:
        self.batches_rejected.labels(reason.value).inc()
        for kind, n in counts.items():
            self.events_rejected.labels(kind, reason.value).inc(n)


class _ConnectionCollector(Collector):
    def __init__(self, limits: ConnectionLimits) -> None:
        self._limits = limits

    def collect(self) -> Iterator[Metric]:
        open_now = GaugeMetricFamily("chimera_http_connections_open", "Open HTTP connections")
        open_now.add_metric([], self._limits.open_total)
        yield open_now
        refused = CounterMetricFamily(
            "chimera_http_connections_refused",
            "Connections closed at once: the client address already held HTTP_MAX_CONNECTIONS_PER_CLIENT")
        refused.add_metric([], self._limits.refused_total)
        yield refused
        timeouts = CounterMetricFamily(
            "chimera_http_header_timeouts",
            "Connections closed because a request's headers did not arrive within HTTP_HEADER_TIMEOUT_S")
        timeouts.add_metric([], self._limits.header_timeouts_total)
        yield timeouts
