"""Where POST /v1/events puts events: Kafka, through one idempotent acks=all producer.

`EventSink.send` returns only once Kafka acknowledged every record. When it
cannot (no broker, or no acknowledgment within `kafka_produce_timeout_s`) it
raises `KafkaUnavailable`, and the records still queued in the producer are
dropped with it: aiokafka's idempotent producer would otherwise retry them
for ever and deliver them when the broker is back, storing events whose
client was told 503 and will send them again. The sink then connects a
fresh producer in the background, backing off, and answers 503 at once
until it has one. The service therefore starts, and stays up, without
Kafka; /readyz says whether the broker answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Protocol

from services.ingest.config import IngestSettings
from services.ingest.telemetry import IngestTelemetry
from shared.background import cancel_and_wait, spawn
from shared.events import Event
from shared.kafka.options import KafkaClientError
from shared.kafka.producer import OutgoingRecord, ProduceError
from shared.kafka.producer_choice import create_producer

log = logging.getLogger(__name__)

_FIRST_BACKOFF_S: Final = 0.25


class SinkError(Exception):
    """Events were not (all) stored. `retriable`: sending them again may succeed."""

    retriable: bool = False

    def __init__(self, reason: str, *, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


class KafkaUnavailable(SinkError):
    """Kafka is unreachable or did not acknowledge in time; try again after `retry_after_s`."""

    retriable = True

    def __init__(self, reason: str, retry_after_s: int, *, cause: BaseException | None = None) -> None:
        super().__init__(reason, cause=cause)
        self.retry_after_s = retry_after_s


class DeliveryFailed(SinkError):
    """Kafka refused the records for a reason retrying will not fix."""


class Producer(Protocol):
    async def start(self) -> None: ...

    async def send_events(self, events: Sequence[Event], *, timeout_s: float | None = None) -> None: ...

    async def send_batch(self, records: Sequence[OutgoingRecord], *, timeout_s: float | None = None) -> None: ...

    async def close(self, flush_timeout_s: float) -> None: ...

    async def probe(self, timeout_s: float) -> bool: ...


class EventSink:
    def __init__(
        self,
        settings: IngestSettings,
        telemetry: IngestTelemetry,
        *,
        producer_factory: Callable[[], Producer] | None = None,
    ) -> None:
        self._telemetry = telemetry
        self._timeout_s = settings.kafka_produce_timeout_s
        self._retry_after_s = settings.kafka_retry_after_s
        self._max_backoff_s = settings.kafka_reconnect_max_backoff_s
        self._probe_timeout_s = settings.readiness_timeout_s
        self._shutdown_flush_s = max(settings.shutdown_grace_s, 1.0)
        self._factory = producer_factory or (lambda: create_producer(
            settings, settings.kafka_producer_impl,
            client_id="chimera-ingest",
            delivery_timeout_s=settings.kafka_produce_timeout_s,
            request_timeout_ms=int(min(5.0, settings.kafka_produce_timeout_s) * 1000),
        ))
        self._producer: Producer | None = None
        self._wanted = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._connector: asyncio.Task[Any] | None = None
        self._retiring: set[asyncio.Task[Any]] = set()
        self.last_error: str | None = None

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Begin connecting; returns after the first attempt, whether it succeeded or not."""
        if self._connector is not None:
            return
        self._wanted.set()
        self._connector = spawn(self._keep_connected(), "kafka-producer-connector")
        await self._first_attempt.wait()

    async def _keep_connected(self) -> None:
        backoff_s = _FIRST_BACKOFF_S
        while True:
            await self._wanted.wait()
            producer = self._factory()
            try:
                await producer.start()
            except Exception as exc:  # noqa: BLE001 - keep trying whatever the cause; logged
                self.last_error = f"cannot connect to Kafka: {exc}"
                if not isinstance(exc, KafkaClientError):
                    log.exception("unexpected error connecting to Kafka")
                log.warning("%s; retrying in %.2fs", self.last_error, backoff_s)
                self._first_attempt.set()
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self._max_backoff_s)
                continue
            self._producer = producer
            self._wanted.clear()
            self._first_attempt.set()
            self.last_error = None
            backoff_s = _FIRST_BACKOFF_S
            self._telemetry.kafka_connected.set(1)
            self._telemetry.kafka_reconnects.inc()
            log.info("connected to Kafka")

    async def send(self, events: Sequence[Event]) -> None:
        """Return once Kafka acknowledged every event; raise KafkaUnavailable or DeliveryFailed."""
        await self._deliver(lambda producer: producer.send_events(events, timeout_s=self._timeout_s))

    async def send_records(self, records: Sequence[OutgoingRecord]) -> None:
        """`send` for records already encoded (POST /v1/events' checked shares); same outcomes."""
        await self._deliver(lambda producer: producer.send_batch(records, timeout_s=self._timeout_s))

    async def _deliver(self, sending: Callable[[Producer], Awaitable[None]]) -> None:
        producer = self._producer
        if producer is None:
            raise KafkaUnavailable(self.last_error or "not connected to Kafka", self._retry_after_s)
        started_s = time.perf_counter()
        try:
            await sending(producer)
        except ProduceError as exc:
            self._telemetry.produce_duration_s.labels("failed").observe(time.perf_counter() - started_s)
            # A producer dropped meanwhile (another batch's failure) refuses with
            # non-retriable errors such as ProducerClosed; that is still an outage.
            if exc.retriable or producer is not self._producer:
                self._drop(producer, str(exc))
                raise KafkaUnavailable(str(exc), self._retry_after_s, cause=exc) from exc
            raise DeliveryFailed(str(exc), cause=exc) from exc
        self._telemetry.produce_duration_s.labels("acknowledged").observe(time.perf_counter() - started_s)

    def _drop(self, producer: Producer, reason: str) -> None:
        if producer is not self._producer:
            return  # already dropped by a concurrent failure
        log.warning("dropping the Kafka producer and reconnecting: %s", reason)
        self.last_error = reason
        self._producer = None
        self._telemetry.kafka_connected.set(0)
        self._wanted.set()
        task = spawn(producer.close(0), "kafka-producer-drop")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def ready(self) -> bool:
        producer = self._producer
        return producer is not None and await producer.probe(self._probe_timeout_s)

    async def stop(self) -> None:
        """Stop reconnecting, deliver what is queued (bounded), disconnect. Safe to call twice."""
        connector, self._connector = self._connector, None
        await cancel_and_wait(connector)
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.close(self._shutdown_flush_s)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        self._telemetry.kafka_connected.set(0)
