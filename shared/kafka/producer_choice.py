"""Which producer implementation a service uses (setting KAFKA_PRODUCER_IMPL), behind one interface.

`aiokafka` (EventProducer, the default), `aiokafka-batch` (BatchApiProducer:
one delivery future per partition) and `confluent` (ConfluentEventProducer over
librdkafka) keep the same guarantees: acks=all, idempotence, records on the
partition murmur2 of the key gives, `send_batch` returning once all are
acknowledged or raising ProduceError. bench/produce_bench.py measures them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, get_args

from shared.events import Event
from shared.kafka.producer import EventProducer, OutgoingRecord
from shared.settings import KafkaProducerImpl, ServiceSettings

ProducerImpl = KafkaProducerImpl
PRODUCER_IMPLS: tuple[ProducerImpl, ...] = get_args(KafkaProducerImpl)


class Producer(Protocol):
    """What every implementation offers (EventProducer's public interface)."""

    @property
    def started(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def close(self, flush_timeout_s: float) -> None: ...

    async def send_batch(
        self,
        records: Iterable[tuple[str, bytes | None, bytes] | OutgoingRecord],
        *,
        timeout_s: float | None = None,
    ) -> None: ...

    async def send_events(self, events: Iterable[Event], *, timeout_s: float | None = None) -> None: ...

    async def probe(self, timeout_s: float) -> bool: ...


def create_producer(
    settings: ServiceSettings,
    impl: ProducerImpl = "aiokafka",
    *,
    client_id: str | None = None,
    delivery_timeout_s: float = 10.0,
    request_timeout_ms: int = 5_000,
) -> Producer:
    """A producer of `impl` (the ingest passes its KAFKA_PRODUCER_IMPL); not started."""
    if impl == "confluent":
        # Imported here: confluent-kafka is an optional dependency.
        from shared.kafka.confluent_producer import ConfluentEventProducer

        return ConfluentEventProducer(settings, client_id=client_id, delivery_timeout_s=delivery_timeout_s,
                                      request_timeout_ms=request_timeout_ms)
    if impl == "aiokafka-batch":
        from shared.kafka.batch_producer import BatchApiProducer

        return BatchApiProducer(settings, client_id=client_id, delivery_timeout_s=delivery_timeout_s,
                                request_timeout_ms=request_timeout_ms)
    return EventProducer(settings, client_id=client_id, delivery_timeout_s=delivery_timeout_s,
                         request_timeout_ms=request_timeout_ms)
