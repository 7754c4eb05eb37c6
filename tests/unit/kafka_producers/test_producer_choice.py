"""The KAFKA_PRODUCER_IMPL setting and the pure parts of the producer implementations."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from services.ingest.config import IngestSettings
from shared.kafka.batch_producer import BatchApiProducer, KeyPartitioner
from shared.kafka.producer import EventProducer
from shared.kafka.producer_choice import PRODUCER_IMPLS, create_producer
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit


def test_the_ingest_defaults_to_the_batch_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_PRODUCER_IMPL", raising=False)
    assert IngestSettings().kafka_producer_impl == "aiokafka-batch"
    # Without a choice, a producer is aiokafka's per-record one (the other services' today).
    assert type(create_producer(ServiceSettings())) is EventProducer


def test_the_setting_chooses_the_implementation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_PRODUCER_IMPL", "aiokafka")
    settings = IngestSettings()
    assert type(create_producer(settings, settings.kafka_producer_impl)) is EventProducer
    assert isinstance(create_producer(settings, "aiokafka-batch"), BatchApiProducer)
    assert PRODUCER_IMPLS == ("aiokafka", "aiokafka-batch", "confluent")


def test_unknown_implementation_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_PRODUCER_IMPL", "kafka-python")
    with pytest.raises(ValidationError):
        IngestSettings()


def test_key_partitioner_agrees_with_aiokafka_and_stays_bounded() -> None:
    reference = DefaultPartitioner()
    partitioner = KeyPartitioner(max_entries=64)
    for count in (1, 3, 12):
        partitions = list(range(count))
        for n in range(500):
            key = f"bc1qminer{n}".encode()
            assert partitioner(key, partitions) == reference(key, partitions, partitions)
            assert partitioner(key, partitions) == reference(key, partitions, partitions)  # cached
    assert len(partitioner._cache) <= 64
    assert partitioner(None, [0, 1, 2]) in (0, 1, 2)


class FakeAioProducer:
    """Enough of AIOKafkaProducer for BatchApiProducer._enqueue: 3 partitions, batches held."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, list[bytes]]] = []
        self.deliveries: list[asyncio.Future[object]] = []
        self.admit = asyncio.Event()
        self.admit.set()
        self.refuse: BaseException | None = None

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def create_batch(self) -> Any:
        from aiokafka.producer.message_accumulator import BatchBuilder

        return BatchBuilder(4096, 0)

    async def send_batch(self, builder: Any, topic: str, *, partition: int) -> asyncio.Future[object]:
        await self.admit.wait()  # the accumulator may make a batch wait for the previous one
        if self.refuse is not None:
            raise self.refuse
        values = [r.value for r in _records(builder)]
        self.sent.append((topic, partition, values))
        delivery: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery


def _records(builder: Any) -> list[Any]:
    from aiokafka.record.default_records import DefaultRecordBatch

    return list(DefaultRecordBatch(bytearray(builder._build())))


def _batch_producer() -> BatchApiProducer:
    return BatchApiProducer(ServiceSettings())


def _partition(key: bytes) -> int:
    return int(DefaultPartitioner()(key, [0, 1, 2], [0, 1, 2]))


async def test_one_delivery_per_partition_in_key_order() -> None:
    producer, fake = _batch_producer(), FakeAioProducer()
    keys = [f"m{k}".encode() for k in range(6)]
    records = [("t", keys[i % 6], f"{i % 6}:{i // 6}".encode()) for i in range(60)]
    deliveries: list[asyncio.Future[object]] = []
    await producer._enqueue(fake, records, deliveries)  # type: ignore[arg-type]
    partitions = {_partition(k) for k in keys}
    assert sorted(p for _, p, _ in fake.sent) == sorted(partitions)
    assert len(deliveries) == len(partitions)
    for _, partition, values in fake.sent:
        for key in keys:
            if _partition(key) == partition:
                k = key[1:].decode()
                mine = [v for v in values if v.startswith(f"{k}:".encode())]
                assert mine == [f"{k}:{n}".encode() for n in range(10)]
    assert not any(d.done() for d in deliveries)
    for delivery in fake.deliveries:
        delivery.set_result(None)
    await asyncio.gather(*deliveries)


async def test_concurrent_calls_share_the_waiting_batch() -> None:
    producer, fake = _batch_producer(), FakeAioProducer()
    fake.admit.clear()  # the partition's previous batch has not left yet
    first: list[asyncio.Future[object]] = []
    second: list[asyncio.Future[object]] = []
    a = asyncio.ensure_future(producer._enqueue(fake, [("t", b"k", b"1")], first))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    b = asyncio.ensure_future(producer._enqueue(fake, [("t", b"k", b"2")], second))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    fake.admit.set()
    await asyncio.gather(a, b)
    assert [values for _, _, values in fake.sent] == [[b"1", b"2"]]
    assert first[0] is second[0]
    fake.deliveries[0].set_exception(RuntimeError("broker said no"))
    for future in (first[0], second[0]):
        with pytest.raises(RuntimeError):
            await future
    # The next record opens a new batch: a submitted one takes no more.
    third: list[asyncio.Future[object]] = []
    await producer._enqueue(fake, [("t", b"k", b"3")], third)  # type: ignore[arg-type]
    assert [values for _, _, values in fake.sent][1] == [b"3"]


async def test_a_refused_submission_fails_every_writer() -> None:
    producer, fake = _batch_producer(), FakeAioProducer()
    fake.admit.clear()
    fake.refuse = ConnectionError("closed")
    first: list[asyncio.Future[object]] = []
    second: list[asyncio.Future[object]] = []
    a = asyncio.ensure_future(producer._enqueue(fake, [("t", b"k", b"1")], first))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    await producer._enqueue(fake, [("t", b"k", b"2")], second)  # type: ignore[arg-type]  # joins a's batch
    fake.admit.set()
    with pytest.raises(ConnectionError):
        await a
    with pytest.raises(ConnectionError):
        await second[0]
    assert producer._open == {}


async def test_a_cancelled_call_leaves_no_batch_open() -> None:
    producer, fake = _batch_producer(), FakeAioProducer()
    fake.admit.clear()
    mine: list[asyncio.Future[object]] = []
    keys = [f"m{k}".encode() for k in range(12)]  # several partitions: several builders to submit
    call = asyncio.ensure_future(
        producer._enqueue(fake, [("t", k, b"x") for k in keys], mine))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    theirs: list[asyncio.Future[object]] = []
    await asyncio.wait_for(  # joins every builder of the waiting call, submits none itself
        producer._enqueue(fake, [("t", k, b"y") for k in keys], theirs), 1)  # type: ignore[arg-type]
    call.cancel()  # as the caller's timeout does, while the first submission waits
    with pytest.raises(asyncio.CancelledError):
        await call
    assert producer._open == {}
    assert len(theirs) == 3
    for future in theirs:
        with pytest.raises(Exception):
            await future
    # The producer goes on: a new call opens new batches and they are sent.
    fake.admit.set()
    after: list[asyncio.Future[object]] = []
    await producer._enqueue(fake, [("t", b"m0", b"z")], after)  # type: ignore[arg-type]
    assert fake.sent[-1][2] == [b"z"]


async def test_stop_forgets_open_batches() -> None:
    producer = _batch_producer()
    producer._open[("t", 0)] = object()  # type: ignore[assignment]
    await producer.stop()
    await producer.stop()
    assert producer._open == {}
