"""MetricsPersister on the real broker and database: commit only what is durable, dead-letter the rest."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.ingest.adapters.metrics_persister import (
    GROUP_ID,
    AnyEnvelope,
    MetricsPersister,
)
from services.ingest.adapters.metrics_store import MetricsStore
from shared.db.migrate import migrate_database
from shared.db.pool import create_pool
from shared.kafka.deadletter import HEADER_ERROR
from shared.kafka.options import client_options
from shared.kafka.producer import EventProducer
from shared.kafka.topics import Topic, ensure_topics, topic_name
from shared.metric_envelopes import MetricEnvelope, PerformanceEnvelope
from shared.settings import ServiceSettings
from tests.conftest import Endpoints
from tests.integration.ingest.conftest import delete_topics
from tests.integration.ingest.helpers import read_topics

pytestmark = pytest.mark.integration


@pytest.fixture
async def settings(endpoints: Endpoints, topic_prefix: str, db_schema: str) -> AsyncIterator[ServiceSettings]:
    settings = ServiceSettings(
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers, kafka_topic_prefix=topic_prefix,
        kafka_topic_partitions=2, database_url=endpoints.database_url, database_schema=db_schema,
    )
    await migrate_database(settings)
    await ensure_topics(settings)
    yield settings
    await delete_topics(settings)  # type: ignore[arg-type]  # needs only the prefix and the broker


@pytest.fixture
async def pool(settings: ServiceSettings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings)
    try:
        yield pool
    finally:
        await pool.close()


class FlakyStore:
    """Fails the first write; the second writes and then fails as if the acknowledgment were lost."""

    def __init__(self, store: MetricsStore) -> None:
        self._store = store
        self.calls = 0
        self.first_failed = asyncio.Event()
        self.gate = asyncio.Event()  # the second call waits for the test to look at the offsets

    async def write(self, envelopes: Sequence[AnyEnvelope]) -> None:
        self.calls += 1
        if self.calls == 1:
            self.first_failed.set()
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        if self.calls == 2:
            await self.gate.wait()
            await self._store.write(envelopes)
            raise ConnectionResetError("connection lost after COMMIT")
        await self._store.write(envelopes)


async def committed(settings: ServiceSettings) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(topic_name(settings, GROUP_ID))
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def wait_for(condition: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def metric(i: int) -> MetricEnvelope:
    return MetricEnvelope(id=uuid.uuid4(), ts=datetime.now(UTC), name=f"m{i % 3}", type="gauge", value=float(i),
                          labels={"i": str(i)})


async def test_failed_batch_is_not_committed_and_is_stored_exactly_once(
    settings: ServiceSettings, pool: asyncpg.Pool,
) -> None:
    flaky = FlakyStore(MetricsStore(pool))
    persister = MetricsPersister(settings, flaky, None, retry_initial_s=0.02, retry_max_s=0.1)
    await persister.start()
    try:
        envelopes = [metric(i) for i in range(20)]
        await persister.publish(envelopes)
        await asyncio.wait_for(flaky.first_failed.wait(), 20)
        # The insert failed (and the retry is held): no offset may be committed past it.
        await asyncio.sleep(0.3)
        assert await committed(settings) == {}
        assert await pool.fetchval("SELECT count(*) FROM metrics") == 0
        flaky.gate.set()

        async def all_committed() -> bool:
            return sum((await committed(settings)).values()) == 20
        await wait_for(all_committed)
    finally:
        await persister.stop()
        await persister.stop()  # safe twice
    rows = await pool.fetch("SELECT id, value FROM metrics")
    assert sorted(r["value"] for r in rows) == [float(i) for i in range(20)]  # once each, despite two inserts
    assert {r["id"] for r in rows} == {e.id for e in envelopes}
    assert flaky.calls >= 3
    assert persister.failures.get("store metrics", 0) >= 2


async def test_bad_records_are_dead_lettered_and_the_rest_stored(settings: ServiceSettings, pool: asyncpg.Pool) -> None:
    producer = EventProducer(settings)
    await producer.start()
    topic = topic_name(settings, Topic.METRICS)
    good = metric(1)
    # Decodes as an envelope, but PostgreSQL refuses it (cpu_usage >= 0 is a CHECK of the table).
    refused = PerformanceEnvelope(id=uuid.uuid4(), ts=datetime.now(UTC), host="h", service="", cpu_usage=-5.0,
                                  labels={})
    try:
        await producer.send_batch([
            (topic, b"x", b"not json"),
            (topic, b"m1", orjson.dumps(good.model_dump(mode="json"))),
            (topic, b"h", orjson.dumps(refused.model_dump(mode="json"))),
            (topic, b"y", orjson.dumps({"kind": "alien", "id": "1"})),
        ])
    finally:
        await producer.stop()
    persister = MetricsPersister(settings, MetricsStore(pool), None, retry_initial_s=0.02, retry_max_s=0.1)
    await persister.start()
    try:
        async def settled() -> bool:
            return persister.stored == 1 and persister.dead_lettered == 3 and \
                sum((await committed(settings)).values()) == 4
        await wait_for(settled)
    finally:
        await persister.stop()
    assert await pool.fetchval("SELECT value FROM metrics WHERE id = $1", good.id) == 1.0
    assert await pool.fetchval("SELECT count(*) FROM performance_metrics") == 0
    letters = await read_topics(settings, (Topic.DEADLETTER,))
    assert sorted(r.key for r in letters) == [b"h", b"x", b"y"]
    reasons = {r.key: orjson.loads(dict(r.headers)[HEADER_ERROR])["reason"] for r in letters}
    assert reasons == {b"x": "undecodable", b"y": "undecodable", b"h": "rejected by database"}
