"""The aggregator's own Prometheus metrics, on the exporter's registry.

Label values are bounded: topics are the base names of the contract's topics
(`pool.shares`, `pool.blocks`, `pool.miners`), statuses and reasons fixed
lists, partitions the input topics' partition numbers, entities the three
snapshot kinds. The pipeline feeds the event figures through `record_batch`
(via the outputs' `on_batch`); the snapshot, exporter and roll-up adapters
record their own work here.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric

from shared.kafka.topics import Topic

from ..consume.results import BatchResult, PipelineStats

_DURATION_BUCKETS_S: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
# Event-time lag: from milliseconds (live) to the 24 hours lateness allows.
_LAG_BUCKETS_S: Final = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21_600.0, 86_400.0,
)
_BATCH_BUCKETS: Final = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 50_000, 100_000)


class EventStatus(StrEnum):
    PROCESSED = "processed"  # counted into the figures (late ones included)
    DUPLICATE = "duplicate"  # a repeated event_id within the dedup horizon
    TOO_LATE = "too_late"  # older than the lateness limit: dropped
    DEAD_LETTER = "dead_letter"  # did not decode or validate: sent to the dead-letter topic


class AggregatorTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._lag_series: set[tuple[str, int]] = set()
        self.events = Counter(
            "chimera_aggregator_events", "Input records by base topic and what became of them",
            ["topic", "status"], registry=registry,
        )
        self.duplicates = Counter(
            "chimera_aggregator_duplicate_events", "Repeated event_ids counted once, by base topic",
            ["topic"], registry=registry,
        )
        self.late = Counter(
            "chimera_aggregator_late_events",
            "Shares counted into an already complete minute (late, within the lateness limit)",
            registry=registry,
        )
        self.dropped = Counter(
            "chimera_aggregator_dropped_events", "Input records not counted, by reason",
            ["reason"], registry=registry,
        )
        self.batch_records = Histogram(
            "chimera_aggregator_batch_records", "Records per processed batch",
            buckets=_BATCH_BUCKETS, registry=registry,
        )
        self.event_lag_s = Histogram(
            "chimera_aggregator_event_lag_seconds",
            "Processing time minus event time (ts), sampled per batch",
            buckets=_LAG_BUCKETS_S, registry=registry,
        )
        self.consumer_lag = Gauge(
            "chimera_aggregator_consumer_lag_records",
            "Records between the consumer's position and the end of each input partition",
            ["topic", "partition"], registry=registry,
        )
        self.flush_duration_s = Histogram(
            "chimera_aggregator_flush_duration_seconds",
            "Time to make a batch's results durable in PostgreSQL",
            buckets=_DURATION_BUCKETS_S, registry=registry,
        )
        self.partitions_owned = Gauge(
            "chimera_aggregator_partitions_owned", "Input partitions whose models this process holds",
            registry=registry,
        )
        # Snapshot stream
        self.snapshot_records = Counter(
            "chimera_aggregator_snapshot_records", "Records published on the snapshot topic, by entity",
            ["entity"], registry=registry,
        )
        self.snapshot_pending = Gauge(
            "chimera_aggregator_snapshot_pending",
            "Changed miners and workers waiting for a snapshot tick (bounded per tick)", registry=registry,
        )
        self.snapshot_tick_s = Histogram(
            "chimera_aggregator_snapshot_tick_seconds", "Time to compute and publish one snapshot tick",
            buckets=_DURATION_BUCKETS_S, registry=registry,
        )
        self.snapshot_failures = Counter(
            "chimera_aggregator_snapshot_failures", "Snapshot ticks whose records Kafka did not acknowledge",
            registry=registry,
        )
        # Roll-ups
        self.rollup_pass_s = Histogram(
            "chimera_aggregator_rollup_pass_seconds", "Duration of one roll-up pass, by kind",
            ["kind"], buckets=_DURATION_BUCKETS_S, registry=registry,
        )
        self.rollup_rows = Counter(
            "chimera_aggregator_rollup_rows", "Roll-up rows written (changed) or deleted, by table",
            ["table", "op"], registry=registry,
        )
        self.rollup_failures = Counter(
            "chimera_aggregator_rollup_failures", "Roll-up passes that failed (retried next pass)",
            registry=registry,
        )
        # Exporter
        self.exported_miners = Gauge(
            "chimera_aggregator_exported_miners",
            "Miners with per-miner series on /metrics (top N by hashrate + allow-list)", registry=registry,
        )
        self.exporter_refresh_failures = Counter(
            "chimera_aggregator_exporter_refresh_failures",
            "Failed refreshes of the exporter's figures, by step", ["step"], registry=registry,
        )

    def record_batch(self, outcome: BatchResult) -> None:
        received = outcome.received
        for topic in set(received) | set(outcome.duplicates) | set(outcome.dead_lettered):
            duplicate = outcome.duplicates.get(topic, 0)
            dead = outcome.dead_lettered.get(topic, 0)
            too_late = outcome.too_late if topic == Topic.SHARES else 0
            processed = max(received.get(topic, 0) - duplicate - dead - too_late, 0)
            for status, n in ((EventStatus.PROCESSED, processed), (EventStatus.DUPLICATE, duplicate),
                              (EventStatus.TOO_LATE, too_late), (EventStatus.DEAD_LETTER, dead)):
                if n:
                    self.events.labels(topic, status.value).inc(n)
            if duplicate:
                self.duplicates.labels(topic).inc(duplicate)
            if dead:
                self.dropped.labels(EventStatus.DEAD_LETTER.value).inc(dead)
        if outcome.too_late:
            self.dropped.labels(EventStatus.TOO_LATE.value).inc(outcome.too_late)
        if outcome.late:
            self.late.inc(outcome.late)
        if outcome.batch_size:
            self.batch_records.observe(outcome.batch_size)
        for lag_ms in outcome.event_lag_ms:
            self.event_lag_s.observe(max(lag_ms, 0) / 1000.0)
        if outcome.flush_duration_s is not None:
            self.flush_duration_s.observe(outcome.flush_duration_s)
        for (topic, partition), behind in (outcome.consumer_lag or {}).items():
            self.consumer_lag.labels(topic, str(partition)).set(behind)
            self._lag_series.add((topic, partition))
        revoked = set(outcome.revoked)
        for topic, partition in [s for s in self._lag_series if s[1] in revoked]:
            self.consumer_lag.remove(topic, str(partition))
            self._lag_series.discard((topic, partition))


class PipelineCounters:
    """The pipeline's own running totals (`PipelineStats`), read at scrape time: the
    events no batch result carries (a failed write, a take-over) are counted there."""

    def __init__(self, stats: PipelineStats) -> None:
        self._stats = stats

    def describe(self) -> list[Metric]:
        return []  # collected fresh each scrape; nothing to check names against up front

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        yield CounterMetricFamily(
            "chimera_aggregator_store_failures",
            "Batch transactions that failed (PostgreSQL away, a timeout); their partitions are "
            "rebuilt from the database and the records read again", value=s.store_failures)
        yield CounterMetricFamily(
            "chimera_aggregator_stale_partitions",
            "Partitions found moved on by another group member at write time (nothing written)",
            value=s.stale_partitions)
        takeovers = CounterMetricFamily(
            "chimera_aggregator_partition_takeovers",
            "Partitions taken over: rebuilt from the database, or kept (nobody moved them meanwhile)",
            labels=["how"])
        takeovers.add_metric(["rebuilt"], s.takeovers)
        takeovers.add_metric(["kept"], s.reuses)
        yield takeovers
        yield CounterMetricFamily(
            "chimera_aggregator_dedup_ids_replayed",
            "Journaled event ids replayed into deduplicators at take-overs", value=s.replayed)
        yield CounterMetricFamily(
            "chimera_aggregator_output_failures",
            "Outputs (snapshots, exporter, roll-ups) that raised on a batch", value=s.output_failures)
