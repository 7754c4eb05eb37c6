"""The metrics API's pipeline: publish samples to `pool.metrics`, and persist that topic to PostgreSQL.

One producer serves both directions (the API's writes and the persister's
dead letters), so the container owns a single object with one start/stop.

Publishing (`publish`) returns once Kafka acknowledged the records (acks=all);
the API answers 202 only then.

Persisting runs as one owned background task, a `BatchConsumer` in its own
group, and never moves past a batch before it is durable:

1. decode every record; those that are not envelopes go to the dead-letter
   topic (acknowledged before going on);
2. write the batch in one transaction; on failure wait and retry the same
   batch with backoff, for as long as it takes (PostgreSQL down, schema not
   migrated yet...). Only a row PostgreSQL itself rejects as bad data (SQLSTATE
   class 22 or 23: nothing a retry can fix) is isolated record by record and
   dead-lettered, so one bad row cannot stall the stream;
3. only then commit the batch's offsets.

A crash between 2 and 3 re-delivers the batch; the store's writes are
idempotent (envelope ids), so nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol, TypeVar

import asyncpg
from prometheus_client import CollectorRegistry, Counter

from shared.background import cancel_and_wait, spawn
from shared.kafka.consumer import BatchConsumer, CommitError, Record
from shared.kafka.deadletter import DeadLetter, DeadLetterProducer
from shared.kafka.options import KafkaClientError
from shared.kafka.producer import EventProducer, OutgoingRecord, ProduceError
from shared.kafka.topics import Topic, topic_name
from shared.metric_envelopes import (
    MetricEnvelope,
    MinerReportEnvelope,
    PerformanceEnvelope,
    decode_envelope,
    encode_envelope,
    record_key,
)
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

AnyEnvelope = MetricEnvelope | PerformanceEnvelope | MinerReportEnvelope
T = TypeVar("T")
GROUP_ID: Final = "ingest.metrics-persister"
# Default for how long a POST waits for the producer (of a just-started service) before answering 503.
READY_WAIT_S: Final = 5.0
# SQLSTATE classes meaning "this row is wrong", as opposed to "try again later".
_BAD_DATA_CLASSES: Final = ("22", "23")


class MetricsWriter(Protocol):
    async def write(self, envelopes: Sequence[AnyEnvelope]) -> None: ...


class WithRegistry(Protocol):
    """The service telemetry, as far as the persister needs it: where to register its own metrics."""

    registry: CollectorRegistry


class MetricsUnavailable(Exception):
    """Kafka did not take the samples (not connected yet, or not acknowledging); retry later."""

    def __init__(self, reason: str, retry_after_s: int = 5) -> None:
        self.reason = reason
        self.retry_after_s = retry_after_s
        super().__init__(reason)


def is_bad_data(exc: BaseException) -> bool:
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(exc, asyncpg.PostgresError) and isinstance(sqlstate, str) and sqlstate[:2] in _BAD_DATA_CLASSES


class _Telemetry:
    """The persister's own metrics, on the service registry when there is one."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        registry = registry or CollectorRegistry()
        self.stored = Counter("chimera_metrics_persisted", "Metrics API samples stored in PostgreSQL, by kind",
                              ["kind"], registry=registry)
        self.dead_lettered = Counter("chimera_metrics_dead_lettered",
                                     "pool.metrics records sent to the dead-letter topic", registry=registry)
        self.retries = Counter("chimera_metrics_persister_retries",
                               "Failed attempts the persister retried, by step", ["step"], registry=registry)


class MetricsPersister:
    def __init__(
        self,
        settings: ServiceSettings,
        store: MetricsWriter,
        telemetry: WithRegistry | None = None,
        *,
        max_records: int = 500,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 10.0,
    ) -> None:
        self._settings = settings
        self._store = store
        self._metrics = _Telemetry(telemetry.registry if telemetry is not None else None)
        self._max_records = max_records
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self.topic = topic_name(settings, Topic.METRICS)
        # IngestSettings carries the produce timeout and Retry-After; plain ServiceSettings (tests) use defaults.
        self._retry_after_s = int(getattr(settings, "kafka_retry_after_s", 5))
        # A POST waits for a (re)connecting producer no longer than it would for an acknowledgment.
        self._produce_timeout_s = float(getattr(settings, "kafka_produce_timeout_s", READY_WAIT_S))
        self._producer = EventProducer(settings, client_id="ingest-metrics", delivery_timeout_s=self._produce_timeout_s)
        self._producer_ready = asyncio.Event()
        self._consumer: BatchConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        # Running totals, for tests and logs.
        self.stored = 0
        self.dead_lettered = 0
        self.failures: dict[str, int] = {}  # what failed (then was retried) -> how often
        self.committed_batches = 0

    # --- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Connects in the background: a service with Kafka down still starts (POSTs answer 503)."""
        if self._task is None:
            self._task = spawn(self._run(), "metrics-persister")

    async def stop(self) -> None:
        """Stop consuming (an unfinished batch stays uncommitted, to be re-delivered). Safe twice."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
        self._producer_ready.clear()
        await self._producer.stop()

    # --- publishing -----------------------------------------------------------

    async def publish(self, envelopes: Sequence[AnyEnvelope]) -> None:
        """Send to `pool.metrics`; return once acknowledged, else raise MetricsUnavailable."""
        if not self._producer_ready.is_set():
            try:
                await asyncio.wait_for(self._producer_ready.wait(), self._produce_timeout_s)
            except TimeoutError:
                raise MetricsUnavailable("not connected to Kafka yet", self._retry_after_s) from None
        try:
            await self._producer.send_batch(
                [OutgoingRecord(self.topic, record_key(e), encode_envelope(e)) for e in envelopes]
            )
        except ProduceError as exc:
            raise MetricsUnavailable(f"Kafka did not acknowledge the samples: {exc}", self._retry_after_s) from exc

    # --- persisting -------------------------------------------------------------

    async def _run(self) -> None:
        await self._retrying("connect the producer", self._producer.start)
        self._producer_ready.set()
        dead_letters = DeadLetterProducer(self._producer, self._settings)
        while True:
            consumer = BatchConsumer(self._settings, [Topic.METRICS], GROUP_ID, max_records=self._max_records,
                                     client_id="ingest-metrics-persister")
            self._consumer = consumer
            try:
                await self._retrying("start the consumer", consumer.start)
                async for batch in consumer.batches():
                    await self._persist(batch, dead_letters)
                    await self._commit(consumer, batch)
                return  # stopped
            except Exception as exc:
                # A fetch failed (or, worse, a bug): rejoin from the committed offsets, so the
                # uncommitted batch comes again, rather than leave the API acknowledging samples
                # that nobody stores.
                if isinstance(exc, KafkaClientError):
                    log.warning("metrics persister: consumer failed, restarting: %s", exc)
                else:
                    log.exception("metrics persister: unexpected error, restarting the consumer")
                self._consumer = None
                await consumer.stop()
                await asyncio.sleep(self._retry_max_s / 4)

    async def _persist(self, batch: list[Record], dead_letters: DeadLetterProducer) -> None:
        decoded: list[tuple[Record, AnyEnvelope]] = []
        letters: list[DeadLetter] = []
        for record in batch:
            if record.value is None:
                letters.append(DeadLetter(record, "empty record", [{"field": "", "message": "record has no value"}]))
                continue
            try:
                decoded.append((record, decode_envelope(record.value)))
            except ValueError as exc:
                letters.append(DeadLetter.from_exception(record, exc))
        if decoded:
            letters += await self._write(decoded)
        if letters:
            log.warning("metrics persister: dead-lettering %d of %d record(s); first: %s",
                        len(letters), len(batch), letters[0].errors[:1])
            await self._retrying("send dead letters", lambda: dead_letters.send(letters))
            self.dead_lettered += len(letters)
            self._metrics.dead_lettered.inc(len(letters))

    async def _write(self, decoded: list[tuple[Record, AnyEnvelope]]) -> list[DeadLetter]:
        """Write durably; return the dead letters of rows PostgreSQL refuses as bad data."""
        envelopes = [e for _, e in decoded]
        try:
            await self._retrying("store metrics", lambda: self._store.write(envelopes), give_up=is_bad_data)
            self._count_stored(envelopes)
            return []
        except asyncpg.PostgresError as exc:
            log.warning("metrics persister: batch refused as bad data (%s), isolating rows", exc.sqlstate)
        letters: list[DeadLetter] = []
        for record, envelope in decoded:
            try:
                await self._retrying("store metric", lambda e=envelope: self._store.write([e]),  # type: ignore[misc]
                                     give_up=is_bad_data)
                self._count_stored([envelope])
            except asyncpg.PostgresError as exc:
                letters.append(DeadLetter(record, "rejected by database",
                                          [{"field": "", "message": f"{exc.sqlstate}: {exc}"}]))
        return letters

    def _count_stored(self, envelopes: Sequence[AnyEnvelope]) -> None:
        self.stored += len(envelopes)
        for envelope in envelopes:
            self._metrics.stored.labels(envelope.kind).inc()

    async def _commit(self, consumer: BatchConsumer, batch: list[Record]) -> None:
        try:
            await consumer.commit(batch)
            self.committed_batches += 1
        except CommitError as exc:
            # Not fatal: the rows are stored, and whoever re-reads the batch
            # (after a rebalance or restart) writes nothing twice.
            log.warning("metrics persister: commit failed (rebalanced=%s): %s", exc.rebalanced, exc)

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[T]],
                        give_up: Callable[[BaseException], bool] | None = None) -> T:
        """Await `attempt()` until it succeeds, backing off; re-raise errors `give_up` accepts."""
        delay = self._retry_initial_s
        while True:
            try:
                return await attempt()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if give_up is not None and give_up(exc):
                    raise
                self.failures[what] = self.failures.get(what, 0) + 1
                self._metrics.retries.labels(what).inc()
                log.warning("metrics persister: cannot %s (retrying in %.1fs): %r", what, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)
