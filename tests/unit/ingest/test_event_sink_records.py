"""EventSink.send_records (the checked shares' way to Kafka): the same outcomes as `send`.

Hand-written fake producer; the real broker path is tests/integration/ingest/test_fast_share_path.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from services.ingest.adapters.event_sink import DeliveryFailed, EventSink, KafkaUnavailable
from services.ingest.config import IngestSettings
from services.ingest.telemetry import IngestTelemetry
from shared.events import Event
from shared.kafka.producer import OutgoingRecord, ProduceError

pytestmark = pytest.mark.unit

RECORDS = [OutgoingRecord("t.pool.shares", b"alice", b"{}"), OutgoingRecord("t.pool.shares", b"bob", b"{}")]


class RecordingProducer:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.batches: list[tuple[list[OutgoingRecord], float | None]] = []
        self.closed = False

    async def start(self) -> None:
        return None

    async def send_events(self, events: Sequence[Event], *, timeout_s: float | None = None) -> None:
        raise AssertionError("checked records must not be sent as events")

    async def send_batch(self, records: Sequence[OutgoingRecord], *, timeout_s: float | None = None) -> None:
        if self.error is not None:
            raise self.error
        self.batches.append((list(records), timeout_s))

    async def close(self, flush_timeout_s: float) -> None:
        self.closed = True

    async def probe(self, timeout_s: float) -> bool:
        return True


async def started_sink(producers: list[RecordingProducer], error: Exception | None = None) -> EventSink:
    def factory() -> RecordingProducer:
        producers.append(RecordingProducer(error))
        return producers[-1]

    settings = IngestSettings(kafka_produce_timeout_s=4.5, kafka_retry_after_s=7)
    sink = EventSink(settings, IngestTelemetry(CollectorRegistry()), producer_factory=factory)
    await sink.start()
    return sink


async def test_records_go_to_send_batch_with_the_produce_timeout() -> None:
    producers: list[RecordingProducer] = []
    sink = await started_sink(producers)
    await sink.send_records(RECORDS)
    assert producers[0].batches == [(RECORDS, 4.5)]
    await sink.stop()


async def test_a_retriable_failure_is_kafka_unavailable_and_drops_the_producer() -> None:
    producers: list[RecordingProducer] = []
    sink = await started_sink(producers, ProduceError("not acknowledged in time", retriable=True))
    with pytest.raises(KafkaUnavailable) as info:
        await sink.send_records(RECORDS)
    assert info.value.retry_after_s == 7
    assert not sink.connected or len(producers) > 1  # dropped; a fresh one is on its way
    await sink.stop()


async def test_a_refusal_is_delivery_failed_and_keeps_the_producer() -> None:
    producers: list[RecordingProducer] = []
    sink = await started_sink(producers, ProduceError("record too large", retriable=False))
    with pytest.raises(DeliveryFailed):
        await sink.send_records(RECORDS)
    assert sink.connected and len(producers) == 1
    await sink.stop()
