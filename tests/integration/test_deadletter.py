"""Bad records go to the dead-letter topic with their reason; good ones in the same batch go on."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import orjson
import pytest

from shared.events import ShareEvent, decode_event
from shared.kafka import (
    BatchConsumer,
    DeadLetterProducer,
    EventProducer,
    Record,
    Topic,
    decode_or_dead_letter,
    ensure_topics,
    topic_name,
    topic_specs,
)
from shared.kafka.deadletter import (
    HEADER_ERROR,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
)
from shared.settings import ServiceSettings
from tests.integration.test_kafka import collect, delete_topics

pytestmark = pytest.mark.integration


def share(event_id: str, miner: str, difficulty: float) -> dict[str, object]:
    return {
        "event_id": event_id,
        "type": "share",
        "ts": int(time.time() * 1000),
        "node": "node-1",
        "miner": miner,
        "difficulty": difficulty,
        "status": "accepted",
    }


@pytest.fixture
async def producer(kafka_settings: ServiceSettings) -> AsyncIterator[EventProducer]:
    await ensure_topics(kafka_settings)
    producer = EventProducer(kafka_settings, delivery_timeout_s=10)
    await producer.start()
    yield producer
    await producer.stop()
    await delete_topics(kafka_settings, [spec.name for spec in topic_specs(kafka_settings)])


async def test_bad_records_are_dead_lettered_and_good_ones_decoded(
    kafka_settings: ServiceSettings, producer: EventProducer
) -> None:
    shares = topic_name(kafka_settings, Topic.SHARES)
    # One key for all, so the batch arrives in this order on one partition.
    key = b"alice"
    await producer.send_batch(
        [
            (shares, key, orjson.dumps(share("e1", "alice", 1024.0))),
            (shares, key, b"not json {"),
            (shares, key, orjson.dumps(share("e2", "alice", -1))),
            (shares, key, orjson.dumps(share("e3", "alice", 2048.0))),
        ]
    )

    consumer = BatchConsumer(kafka_settings, [Topic.SHARES], "decoder")
    await consumer.start()
    try:
        batch = await collect(consumer, 4)
        dead_letters = DeadLetterProducer(producer, kafka_settings)
        events = await decode_or_dead_letter(batch, decode_event, dead_letters)
        await consumer.commit(batch)
    finally:
        await consumer.stop()

    assert [e.event_id for e in events] == ["e1", "e3"]
    assert all(isinstance(e, ShareEvent) for e in events)
    assert dead_letters.sent == 2

    reader = BatchConsumer(kafka_settings, [Topic.DEADLETTER], "dlq-reader")
    await reader.start()
    try:
        letters = await collect(reader, 2)
    finally:
        await reader.stop()
    assert len(letters) == 2
    by_offset = {int(header(r, HEADER_SOURCE_OFFSET)): r for r in letters}
    source = {r.offset: r for r in batch}

    not_json, negative = sorted(by_offset)
    for offset, letter in by_offset.items():
        assert letter.value == source[offset].value  # original bytes, untouched
        assert letter.key == key
        assert header(letter, HEADER_SOURCE_TOPIC) == shares.encode()
        assert int(header(letter, HEADER_SOURCE_PARTITION)) == source[offset].partition

    error = orjson.loads(header(by_offset[not_json], HEADER_ERROR))
    assert error["reason"] == "invalid event"
    assert "JSON" in error["errors"][0]["message"]
    error = orjson.loads(header(by_offset[negative], HEADER_ERROR))
    assert [e["field"] for e in error["errors"]] == ["difficulty"]


async def test_send_events_round_trip_through_the_contract_topics(
    kafka_settings: ServiceSettings, producer: EventProducer
) -> None:
    raw = [orjson.dumps(share(f"s{i}", f"miner{i % 3}", 1.5 + i)) for i in range(6)]
    events = [decode_event(r) for r in raw]
    await producer.send_events(events)

    consumer = BatchConsumer(kafka_settings, [Topic.SHARES, Topic.BLOCKS], "roundtrip")
    await consumer.start()
    try:
        records = await collect(consumer, 6)
    finally:
        await consumer.stop()
    assert {r.topic for r in records} == {topic_name(kafka_settings, Topic.SHARES)}
    decoded = {e.event_id: (r.key, e) for r in records if r.value for e in [decode_event(r.value)]}
    assert {eid: e for eid, (_, e) in decoded.items()} == {e.event_id: e for e in events}
    assert all(key == e.miner.encode() for key, e in decoded.values())


async def test_record_without_value_is_dead_lettered_not_raised(
    kafka_settings: ServiceSettings, producer: EventProducer
) -> None:
    from aiokafka import ConsumerRecord

    tombstone: Record = ConsumerRecord(
        topic="x", partition=0, offset=7, timestamp=0, timestamp_type=0, key=b"k", value=None,
        checksum=None, serialized_key_size=1, serialized_value_size=-1, headers=(),
    )
    dead_letters = DeadLetterProducer(producer, kafka_settings)
    assert await decode_or_dead_letter([tombstone], decode_event, dead_letters) == []
    assert dead_letters.sent == 1


def header(record: Record, name: str) -> bytes:
    values = [value for key, value in record.headers if key == name]
    assert len(values) == 1, (name, record.headers)
    return values[0]
