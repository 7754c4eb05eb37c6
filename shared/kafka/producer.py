"""The one producer configuration of the project: durable, ordered per key, bounded in time.

`EventProducer.send_batch` returns only once the broker has acknowledged every
record (acks=all), or raises `ProduceError` within `delivery_timeout_s`. The
producer is idempotent, so aiokafka's own retries neither duplicate nor
reorder records within a partition. A caller that retries a failed batch may
write some records twice (those acknowledged before the failure); consumers
absorb that through `event_id` dedup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from shared.events import TOPIC_BY_TYPE, Event, encode_event, record_key
from shared.kafka.options import KafkaClientError, client_options, is_retriable
from shared.kafka.topics import topic_name
from shared.settings import ServiceSettings

Headers = Sequence[tuple[str, bytes]]


class OutgoingRecord(NamedTuple):
    """A record to send; a plain (topic, key, value) tuple is accepted wherever this is."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = ()


class ProduceError(KafkaClientError):
    """Records were not (all) acknowledged. Some of the batch may have been written regardless."""

    def __init__(
        self,
        message: str,
        *,
        retriable: bool,
        cause: BaseException | None = None,
        failed: int = 0,
    ) -> None:
        super().__init__(message, retriable=retriable, cause=cause)
        self.failed = failed


def _observe(delivery: asyncio.Future[object]) -> None:
    # Retrieving the outcome keeps asyncio from logging "exception never retrieved".
    if not delivery.cancelled():
        delivery.exception()


def _abandon(deliveries: Sequence[asyncio.Future[object]]) -> int:
    """Stop waiting for deliveries; return how many are not known to be acknowledged."""
    unacknowledged = 0
    for delivery in deliveries:
        if not delivery.done():
            unacknowledged += 1
            delivery.add_done_callback(_observe)
        elif delivery.cancelled() or delivery.exception() is not None:
            unacknowledged += 1
    return unacknowledged


class EventProducer:
    """Owns one AIOKafkaProducer between `start()` and `stop()`."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        client_id: str | None = None,
        linger_ms: int = 5,
        max_batch_size: int = 256 * 1024,
        request_timeout_ms: int = 5_000,
        delivery_timeout_s: float = 10.0,
    ) -> None:
        self._settings = settings
        self._client_id = client_id
        self._linger_ms = linger_ms
        self._max_batch_size = max_batch_size
        self._request_timeout_ms = request_timeout_ms
        self._delivery_timeout_s = delivery_timeout_s
        self._producer: AIOKafkaProducer | None = None

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Connect; raises ProduceError (retriable) when no broker answers in time."""
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            **client_options(self._settings),
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            compression_type="lz4",
            linger_ms=self._linger_ms,
            max_batch_size=self._max_batch_size,
            request_timeout_ms=self._request_timeout_ms,
        )
        try:
            async with asyncio.timeout(self._delivery_timeout_s):
                await producer.start()
        except (KafkaError, TimeoutError) as exc:
            await producer.stop()
            raise ProduceError(
                f"cannot connect to Kafka at {self._settings.kafka_bootstrap_servers}: {exc!r}",
                retriable=is_retriable(exc),
                cause=exc,
            ) from exc
        self._producer = producer

    async def stop(self) -> None:
        """Flush what is pending and disconnect. Safe before start() and when called twice."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send_batch(
        self,
        records: Iterable[tuple[str, bytes | None, bytes] | OutgoingRecord],
        *,
        timeout_s: float | None = None,
    ) -> None:
        """Send (topic, key, value[, headers]) records; return once every one is acknowledged.

        All records are enqueued before any acknowledgment is awaited, so the
        batch travels in as few requests as the partitions allow. Raises
        ProduceError when any record fails or the whole batch is not
        acknowledged within `timeout_s` (default: the producer's `delivery_timeout_s`).
        """
        timeout = self._delivery_timeout_s if timeout_s is None else timeout_s
        producer = self._producer
        if producer is None:
            raise ProduceError("producer is not started", retriable=False)
        deliveries: list[asyncio.Future[object]] = []
        try:
            async with asyncio.timeout(timeout):
                await self._enqueue(producer, records, deliveries)
                # return_exceptions: wait for every outcome so no failure is left unobserved.
                outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
        except TimeoutError as exc:
            # Records already enqueued may still reach the broker (idempotence keeps
            # them unique); their late outcomes are only observed, not reported.
            unacknowledged = _abandon(deliveries)
            raise ProduceError(
                f"Kafka did not acknowledge {unacknowledged or 'the'} record(s) "
                f"within {timeout:g}s",
                retriable=True,
                cause=exc,
                failed=unacknowledged,
            ) from exc
        except asyncio.CancelledError:
            _abandon(deliveries)
            raise
        except KafkaError as exc:
            # send() itself refused a record (too large, metadata unavailable, closed).
            _abandon(deliveries)
            raise ProduceError(
                f"cannot enqueue record: {exc!r}", retriable=is_retriable(exc), cause=exc
            ) from exc
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            first = failures[0]
            raise ProduceError(
                f"{len(failures)} of {len(deliveries)} record(s) not acknowledged: {first!r}",
                retriable=all(is_retriable(f) for f in failures),
                cause=first,
                failed=len(failures),
            ) from first

    async def _enqueue(
        self,
        producer: AIOKafkaProducer,
        records: Iterable[tuple[str, bytes | None, bytes] | OutgoingRecord],
        deliveries: list[asyncio.Future[object]],
    ) -> None:
        """Queue every record, appending each delivery future to `deliveries` as it is made.

        Appending as it goes (rather than returning a list) lets send_batch abandon
        the deliveries already made when enqueueing fails or times out midway.
        Subclasses may queue differently (shared/kafka/batch_producer.py).
        """
        for record in records:
            topic, key, value, *rest = record
            headers = list(rest[0]) if rest else None
            deliveries.append(await producer.send(topic, value=value, key=key, headers=headers))

    async def send_events(self, events: Iterable[Event], *, timeout_s: float | None = None) -> None:
        """Send validated events to their `pool.*` topics, keyed by miner (docs/contract.md 1)."""
        await self.send_batch(
            [
                OutgoingRecord(
                    topic_name(self._settings, TOPIC_BY_TYPE[event.type]),
                    record_key(event),
                    encode_event(event),
                )
                for event in events
            ],
            timeout_s=timeout_s,
        )

    async def close(self, flush_timeout_s: float) -> None:
        """Deliver what is queued within `flush_timeout_s`, drop the rest, disconnect. Idempotent."""
        producer = self._producer
        if producer is None:
            return
        try:
            async with asyncio.timeout(flush_timeout_s):
                await producer.flush()
        except TimeoutError:
            # Private aiokafka API, but the only way to make an idempotent
            # producer give up: its batches never expire, so stop() would
            # otherwise wait for a broker that may never come back.
            accumulator = getattr(producer, "_message_accumulator", None)
            if accumulator is not None:
                accumulator.fail_all(KafkaConnectionError("dropped: Kafka did not acknowledge in time"))
        await self.stop()

    async def probe(self, timeout_s: float) -> bool:
        """True when the broker answers a metadata request within `timeout_s` (for readiness)."""
        producer = self._producer
        if producer is None:
            return False
        try:
            async with asyncio.timeout(timeout_s):
                await producer.client.fetch_all_metadata()
        except (KafkaError, TimeoutError, OSError):
            return False
        return True
