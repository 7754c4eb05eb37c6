"""EventProducer's interface over confluent-kafka (librdkafka), for the produce path's throughput.

librdkafka batches, compresses and talks to the brokers on its own threads,
outside the GIL, so the event loop only hands it records. Guarantees are
EventProducer's: acks=all, idempotence (no duplicates or reordering from its
own retries), records partitioned by murmur2 of the key as aiokafka and the
Java client do, and `send_batch` returning once every record is acknowledged
or raising `ProduceError` within the timeout.

Delivery reports are served by one poll thread owned by the producer (started
by `start()`, joined by `stop()`/`close()`); a call's records share one
counter, and only the last report of a call wakes the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from shared.events import TOPIC_BY_TYPE, Event, encode_event, record_key
from shared.kafka.producer import OutgoingRecord, ProduceError
from shared.kafka.topics import topic_name
from shared.settings import ServiceSettings

# Errors that mean "the broker is away or slow", which a later attempt may survive
# (librdkafka does not flag its own timeouts and transport errors as retriable).
_TRANSIENT = frozenset({
    KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN, KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT,
})
_POLL_INTERVAL_S = 0.05


def is_transient(error: KafkaError) -> bool:
    """Whether retrying (on a fresh producer, for a fatal error) may succeed."""
    return bool(error.retriable() or error.fatal() or error.code() in _TRANSIENT)


def librdkafka_options(settings: ServiceSettings) -> dict[str, Any]:
    """The connection part of librdkafka's configuration, from the same settings as client_options."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": protocol.lower(),
    }
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        options["sasl.mechanism"] = settings.kafka_sasl_mechanism
        options["sasl.username"] = settings.kafka_sasl_username
        options["sasl.password"] = password.get_secret_value() if password else None
    if protocol in ("SSL", "SASL_SSL"):
        for name, path in (("ssl.ca.location", settings.kafka_ssl_cafile),
                           ("ssl.certificate.location", settings.kafka_ssl_certfile),
                           ("ssl.key.location", settings.kafka_ssl_keyfile)):
            if path is not None:
                options[name] = str(path)
        options["ssl.endpoint.identification.algorithm"] = (
            "https" if settings.kafka_ssl_check_hostname else "none")
    return options


class _Call:
    """The delivery reports of one send_batch call; counted on the poll thread."""

    __slots__ = ("_loop", "future", "remaining", "errors")

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self._loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.remaining = count
        self.errors: list[KafkaError] = []

    def on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        # Runs on the poll thread, the only thread serving reports, so no lock is needed.
        if error is not None:
            self.errors.append(error)
        self.remaining -= 1
        if self.remaining == 0:
            try:
                self._loop.call_soon_threadsafe(self._settle)
            except RuntimeError:
                pass  # the loop is closed: no one waits for this call any more

    def _settle(self) -> None:
        if not self.future.done():  # done: the caller timed out or was cancelled
            self.future.set_result(None)


class _Poller:
    """The thread serving delivery reports, and flushing (and purging) at the end."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._stopping = threading.Event()
        self._flush_timeout_s = 0.0
        self._purge = False
        self._thread = threading.Thread(target=self._run, name="kafka-producer-poll", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(_POLL_INTERVAL_S)
        if self._producer.flush(self._flush_timeout_s) and self._purge:
            # Idempotent producers retry for ever otherwise; purged records fail
            # their calls with _PURGE_* errors (reported by the flush below).
            self._producer.purge()
            self._producer.flush(0)

    async def stop(self, flush_timeout_s: float, *, purge: bool) -> None:
        self._flush_timeout_s = flush_timeout_s
        self._purge = purge
        self._stopping.set()
        await asyncio.to_thread(self._thread.join)


class ConfluentEventProducer:
    """The EventProducer interface over one confluent-kafka Producer between start() and stop()."""

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
        self._delivery_timeout_s = delivery_timeout_s
        self._config: dict[str, Any] = {
            **librdkafka_options(settings),
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": "lz4",
            "linger.ms": linger_ms,
            "batch.size": max_batch_size,
            "request.timeout.ms": request_timeout_ms,
            # Reports every record's fate within the delivery timeout at the latest.
            "message.timeout.ms": int(delivery_timeout_s * 1000),
            # murmur2 of the key, as aiokafka and the Java client (librdkafka's default differs).
            "partitioner": "murmur2_random",
        }
        if client_id is not None:
            self._config["client.id"] = client_id
        self._producer: Producer | None = None
        self._poller: _Poller | None = None

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Connect; raises ProduceError (retriable) when no broker answers in time."""
        if self._producer is not None:
            return
        producer = Producer(self._config)
        try:
            # librdkafka connects lazily: a metadata request proves a broker answers.
            await asyncio.to_thread(producer.list_topics, timeout=self._delivery_timeout_s)
        except KafkaException as exc:
            raise ProduceError(
                f"cannot connect to Kafka at {self._settings.kafka_bootstrap_servers}: {exc!r}",
                retriable=True, cause=exc,
            ) from exc
        poller = _Poller(producer)
        poller.start()
        self._producer, self._poller = producer, poller

    async def stop(self) -> None:
        """Flush what is pending and disconnect. Safe before start() and when called twice."""
        await self._shut(self._delivery_timeout_s, purge=False)

    async def close(self, flush_timeout_s: float) -> None:
        """Deliver what is queued within `flush_timeout_s`, drop the rest, disconnect. Idempotent."""
        await self._shut(flush_timeout_s, purge=True)

    async def _shut(self, flush_timeout_s: float, *, purge: bool) -> None:
        poller, self._poller, self._producer = self._poller, None, None
        if poller is not None:
            await poller.stop(flush_timeout_s, purge=purge)

    async def send_batch(
        self,
        records: Iterable[tuple[str, bytes | None, bytes] | OutgoingRecord],
        *,
        timeout_s: float | None = None,
    ) -> None:
        """Send (topic, key, value[, headers]) records; return once every one is acknowledged."""
        timeout = self._delivery_timeout_s if timeout_s is None else timeout_s
        producer = self._producer
        if producer is None:
            raise ProduceError("producer is not started", retriable=False)
        batch = list(records)
        if not batch:
            return
        call = _Call(asyncio.get_running_loop(), len(batch))
        try:
            for topic, key, value, *rest in batch:
                producer.produce(topic, value, key, headers=list(rest[0]) if rest else None,
                                 on_delivery=call.on_delivery)
        except BufferError as exc:
            # librdkafka's local queue is full: the broker is not keeping up.
            raise ProduceError(f"cannot enqueue record: {exc!r}", retriable=True, cause=exc) from exc
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            raise ProduceError(f"cannot enqueue record: {exc!r}",
                               retriable=error is not None and is_transient(error), cause=exc) from exc
        try:
            async with asyncio.timeout(timeout):
                await call.future
        except TimeoutError as exc:
            unacknowledged = call.remaining + len(call.errors)
            raise ProduceError(
                f"Kafka did not acknowledge {unacknowledged or 'the'} record(s) within {timeout:g}s",
                retriable=True, cause=exc, failed=unacknowledged,
            ) from exc
        if call.errors:
            first = call.errors[0]
            raise ProduceError(
                f"{len(call.errors)} of {len(batch)} record(s) not acknowledged: {first!r}",
                retriable=all(is_transient(e) for e in call.errors),
                cause=KafkaException(first),
                failed=len(call.errors),
            )

    async def send_events(self, events: Iterable[Event], *, timeout_s: float | None = None) -> None:
        """Send validated events to their `pool.*` topics, keyed by miner (docs/contract.md 1)."""
        await self.send_batch(
            [OutgoingRecord(topic_name(self._settings, TOPIC_BY_TYPE[event.type]),
                            record_key(event), encode_event(event)) for event in events],
            timeout_s=timeout_s,
        )

    async def probe(self, timeout_s: float) -> bool:
        """True when the broker answers a metadata request within `timeout_s` (for readiness)."""
        producer = self._producer
        if producer is None:
            return False
        try:
            await asyncio.to_thread(producer.list_topics, timeout=timeout_s)
        except KafkaException:
            return False
        return True
