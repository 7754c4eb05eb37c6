"""The shared producer, consumer and topic bootstrap against the real broker."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from aiokafka.structs import TopicPartition

from shared.kafka import (
    BatchConsumer,
    ConsumeError,
    EventProducer,
    ProduceError,
    Record,
    Topic,
    TopicError,
    ensure_topics,
    topic_name,
    topic_specs,
)
from shared.kafka.options import client_options
from shared.settings import ServiceSettings

pytestmark = pytest.mark.integration


async def delete_topics(settings: ServiceSettings, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(**client_options(settings))
    try:
        await admin.start()
        await admin.delete_topics(names)
    finally:
        await admin.close()


@pytest.fixture
async def catalogue(kafka_settings: ServiceSettings) -> AsyncIterator[list[str]]:
    """This test's topics, created, and deleted afterwards so the broker does not fill up."""
    created = await ensure_topics(kafka_settings)
    yield created
    await delete_topics(kafka_settings, [spec.name for spec in topic_specs(kafka_settings)])


@pytest.fixture
async def producer(kafka_settings: ServiceSettings) -> AsyncIterator[EventProducer]:
    producer = EventProducer(kafka_settings, delivery_timeout_s=10)
    await producer.start()
    yield producer
    await producer.stop()


async def collect(consumer: BatchConsumer, count: int, *, within_s: float = 20.0) -> list[Record]:
    """Poll until `count` records came (committing nothing), then linger briefly to catch extras."""
    got: list[Record] = []
    deadline = time.monotonic() + within_s
    while len(got) < count and time.monotonic() < deadline:
        got.extend(await consumer.poll(timeout_ms=500))
    got.extend(await consumer.poll(timeout_ms=300))
    return got


async def test_topic_bootstrap_twice_is_harmless(kafka_settings: ServiceSettings) -> None:
    specs = topic_specs(kafka_settings)
    try:
        assert await ensure_topics(kafka_settings) == [s.name for s in specs]
        assert await ensure_topics(kafka_settings) == []

        admin = AIOKafkaAdminClient(**client_options(kafka_settings))
        await admin.start()
        try:
            described = await admin.describe_topics([s.name for s in specs])
            partitions = {t["topic"]: len(t["partitions"]) for t in described}
            assert partitions == {s.name: 3 for s in specs}
            responses = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in specs]
            )
        finally:
            await admin.close()
        actual = {
            resource[3]: {entry[0]: entry[1] for entry in resource[4]}
            for response in responses
            for resource in response.resources
        }
        for spec in specs:
            for key, value in spec.config.items():
                assert actual[spec.name][key] == value, (spec.name, key)
        assert actual[topic_name(kafka_settings, Topic.SNAPSHOTS)]["retention.ms"] == "3600000"
    finally:
        await delete_topics(kafka_settings, [s.name for s in specs])


async def test_concurrent_bootstrap_from_two_tasks(kafka_settings: ServiceSettings) -> None:
    specs = topic_specs(kafka_settings)
    try:
        first, second = await asyncio.gather(
            ensure_topics(kafka_settings), ensure_topics(kafka_settings)
        )
        # Each topic was created by exactly one of the two; neither call failed.
        assert not set(first) & set(second)
        assert set(first) | set(second) == {s.name for s in specs}
    finally:
        await delete_topics(kafka_settings, [s.name for s in specs])


async def test_keys_keep_one_partition_and_their_order(
    kafka_settings: ServiceSettings, catalogue: list[str], producer: EventProducer
) -> None:
    topic = topic_name(kafka_settings, Topic.SHARES)
    keys = [f"miner-{k}".encode() for k in range(10)]
    await producer.send_batch(
        [(topic, keys[i % 10], f"{i % 10}:{i // 10}".encode()) for i in range(300)]
    )

    consumer = BatchConsumer(kafka_settings, [Topic.SHARES], "order-check")
    await consumer.start()
    try:
        records = await collect(consumer, 300)
    finally:
        await consumer.stop()

    assert len(records) == 300
    partitions: dict[bytes, set[int]] = defaultdict(set)
    sequences: dict[bytes, list[int]] = defaultdict(list)
    for record in records:
        assert record.key is not None and record.value is not None
        partitions[record.key].add(record.partition)
        sequences[record.key].append(int(record.value.split(b":")[1]))
    assert all(len(p) == 1 for p in partitions.values()), partitions
    assert sequences == {key: list(range(30)) for key in keys}
    # With 10 keys over 3 partitions the default partitioner spreads them.
    assert len({p for ps in partitions.values() for p in ps}) > 1


async def test_new_member_resumes_after_the_committed_offset(
    kafka_settings: ServiceSettings, catalogue: list[str], producer: EventProducer
) -> None:
    topic = topic_name(kafka_settings, Topic.BLOCKS)
    await producer.send_batch([(topic, f"k{i % 5}".encode(), str(i).encode()) for i in range(40)])

    first = BatchConsumer(kafka_settings, [Topic.BLOCKS], "resume")
    await first.start()
    try:
        seen = await collect(first, 40)
        assert len(seen) == 40
        # Commit the first half of every partition only, as if the rest were still in flight.
        by_partition: dict[int, list[Record]] = defaultdict(list)
        for record in seen:
            by_partition[record.partition].append(record)
        done = [r for rs in by_partition.values() for r in rs[: len(rs) // 2]]
        await first.commit(done)
    finally:
        await first.stop()

    second = BatchConsumer(kafka_settings, [Topic.BLOCKS], "resume")
    await second.start()
    try:
        resumed = await collect(second, 40 - len(done), within_s=15)
        await second.commit(resumed)
    finally:
        await second.stop()

    position = lambda rs: {(r.partition, r.offset) for r in rs}  # noqa: E731
    assert len(resumed) == 40 - len(done)  # nothing re-delivered twice
    assert position(resumed) == position(seen) - position(done)  # nothing skipped


async def test_batches_iterator_ends_when_stopped(
    kafka_settings: ServiceSettings, catalogue: list[str], producer: EventProducer
) -> None:
    topic = topic_name(kafka_settings, Topic.MINERS)
    await producer.send_batch([(topic, b"m", b"1"), (topic, b"m", b"2")])
    consumer = BatchConsumer(kafka_settings, [Topic.MINERS], "iterate", max_records=1)
    await consumer.start()
    values: list[bytes | None] = []
    try:
        async with asyncio.timeout(20):
            async for batch in consumer.batches():
                assert len(batch) == 1  # max_records bounds a batch
                values.extend(r.value for r in batch)
                await consumer.commit(batch)
                if len(values) == 2:
                    await consumer.stop()
    finally:
        await consumer.stop()
    assert values == [b"1", b"2"]
    await consumer.stop()  # idempotent
    # A rebalance listener can still run while the member leaves: pausing is then a no-op.
    consumer.pause([TopicPartition(topic, 0)])


async def test_producer_lifecycle_is_forgiving(kafka_settings: ServiceSettings) -> None:
    producer = EventProducer(kafka_settings)
    await producer.stop()  # before start
    with pytest.raises(ProduceError) as info:
        await producer.send_batch([("t", None, b"x")])
    assert info.value.retriable is False
    await producer.start()
    await producer.stop()
    await producer.stop()


async def test_delivery_timeout_gives_a_retriable_error_and_the_producer_goes_on(
    kafka_settings: ServiceSettings, catalogue: list[str], producer: EventProducer
) -> None:
    topic = topic_name(kafka_settings, Topic.METRICS)
    with pytest.raises(ProduceError) as info:
        await producer.send_batch([(topic, b"k", b"v")] * 50, timeout_s=0.0005)
    assert info.value.retriable is True
    assert isinstance(info.value.cause, TimeoutError)
    await producer.send_batch([(topic, b"k", b"after")])


async def test_oversized_record_is_not_retriable(
    kafka_settings: ServiceSettings, catalogue: list[str], producer: EventProducer
) -> None:
    topic = topic_name(kafka_settings, Topic.METRICS)
    with pytest.raises(ProduceError) as info:
        await producer.send_batch([(topic, b"k", b"small"), (topic, b"k", b"x" * (2 << 20))])
    assert info.value.retriable is False
    assert isinstance(info.value.cause, MessageSizeTooLargeError)


async def test_unreachable_broker_fails_fast_and_retriable() -> None:
    closed = ServiceSettings(kafka_bootstrap_servers="127.0.0.1:1", kafka_topic_prefix="never.")
    started = time.monotonic()

    producer = EventProducer(closed, delivery_timeout_s=3, request_timeout_ms=2_000)
    with pytest.raises(ProduceError) as produce:
        await producer.start()
    await producer.stop()
    assert produce.value.retriable is True
    assert isinstance(produce.value.cause, KafkaConnectionError)

    with pytest.raises(TopicError) as topics:
        await ensure_topics(closed, timeout_ms=2_000)
    assert topics.value.retriable is True

    consumer = BatchConsumer(closed, [Topic.SHARES], "never")
    with pytest.raises(ConsumeError) as consume:
        await consumer.start()
    assert consume.value.retriable is True
    await consumer.stop()

    assert time.monotonic() - started < 10
