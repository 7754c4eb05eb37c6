"""Every producer implementation (KAFKA_PRODUCER_IMPL) against the real broker: same guarantees."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition

from shared.kafka import ProduceError, Topic, ensure_topics, topic_name, topic_specs
from shared.kafka.options import client_options
from shared.kafka.producer_choice import PRODUCER_IMPLS, Producer, ProducerImpl, create_producer
from shared.settings import ServiceSettings

pytestmark = pytest.mark.integration

_IMPLS = [
    pytest.param(impl, marks=pytest.mark.skipif(
        impl == "confluent" and importlib.util.find_spec("confluent_kafka") is None,
        reason="confluent-kafka not installed"))
    for impl in PRODUCER_IMPLS
]


@pytest.fixture(params=_IMPLS)
def impl(request: pytest.FixtureRequest) -> ProducerImpl:
    chosen: ProducerImpl = request.param
    return chosen


@pytest.fixture
async def catalogue(kafka_settings: ServiceSettings) -> AsyncIterator[None]:
    await ensure_topics(kafka_settings)
    yield
    admin = AIOKafkaAdminClient(**client_options(kafka_settings))
    try:
        await admin.start()
        await admin.delete_topics([spec.name for spec in topic_specs(kafka_settings)])
    finally:
        await admin.close()


@pytest.fixture
async def producer(kafka_settings: ServiceSettings, impl: ProducerImpl) -> AsyncIterator[Producer]:
    producer = create_producer(kafka_settings, impl, delivery_timeout_s=10)
    await producer.start()
    yield producer
    await producer.stop()


async def end_offsets(settings: ServiceSettings, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(**client_options(settings))
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.kafka_topic_partitions)]
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()


async def read_all(settings: ServiceSettings, topic: str, count: int) -> list[tuple[int, bytes, bytes]]:
    consumer = AIOKafkaConsumer(topic, **client_options(settings), auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    got: list[tuple[int, bytes, bytes]] = []
    try:
        deadline = time.monotonic() + 20
        while len(got) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend((r.partition, r.key or b"", r.value or b"") for r in records)
    finally:
        await consumer.stop()
    return got


async def test_acknowledged_on_the_keys_partition_in_order(
    kafka_settings: ServiceSettings, catalogue: None, producer: Producer
) -> None:
    topic = topic_name(kafka_settings, Topic.SHARES)
    keys = [f"bc1qminer{k}".encode() for k in range(20)]
    # Concurrent calls, as the ingest makes them: the batch API shares batches between them.
    calls = [[(topic, keys[i % 20], f"{c}:{i}".encode()) for i in range(200)] for c in range(6)]
    await asyncio.gather(*(producer.send_batch(call) for call in calls))

    # Acknowledged before the calls returned: the log ends already hold every record.
    assert sum((await end_offsets(kafka_settings, topic)).values()) == 1200
    records = await read_all(kafka_settings, topic, 1200)
    assert len(records) == 1200
    partitioner = DefaultPartitioner()
    partitions = list(range(kafka_settings.kafka_topic_partitions))
    sequences: dict[tuple[bytes, str], list[int]] = defaultdict(list)
    for partition, key, value in records:
        assert partition == partitioner(key, partitions, partitions), key
        call, index = value.decode().split(":")
        sequences[(key, call)].append(int(index))
    assert all(seq == sorted(seq) and len(seq) == 10 for seq in sequences.values())


async def test_lifecycle_is_forgiving(kafka_settings: ServiceSettings, impl: ProducerImpl) -> None:
    producer = create_producer(kafka_settings, impl)
    await producer.stop()  # before start
    with pytest.raises(ProduceError) as info:
        await producer.send_batch([("t", None, b"x")])
    assert info.value.retriable is False
    await producer.start()
    assert await producer.probe(5)
    await producer.stop()
    await producer.stop()
    await producer.close(1)
    assert not producer.started


async def test_timeout_is_retriable_and_the_producer_goes_on(
    kafka_settings: ServiceSettings, catalogue: None, producer: Producer
) -> None:
    topic = topic_name(kafka_settings, Topic.METRICS)
    with pytest.raises(ProduceError) as info:
        await producer.send_batch([(topic, b"k", b"v")] * 50, timeout_s=0.0005)
    assert info.value.retriable is True
    await producer.send_batch([(topic, b"k", b"after")])


async def test_oversized_record_is_not_retriable(
    kafka_settings: ServiceSettings, catalogue: None, producer: Producer
) -> None:
    topic = topic_name(kafka_settings, Topic.METRICS)
    with pytest.raises(ProduceError) as info:
        await producer.send_batch([(topic, b"k", b"small"), (topic, b"k", b"x" * (2 << 20))])
    assert info.value.retriable is False
    await producer.send_batch([(topic, b"k", b"after")])


async def test_unreachable_broker_fails_retriable(impl: ProducerImpl) -> None:
    closed = ServiceSettings(kafka_bootstrap_servers="127.0.0.1:1", kafka_topic_prefix="never.")
    producer = create_producer(closed, impl, delivery_timeout_s=3, request_timeout_ms=2_000)
    started = time.monotonic()
    with pytest.raises(ProduceError) as info:
        await producer.start()
    await producer.stop()
    assert info.value.retriable is True
    assert time.monotonic() - started < 10
