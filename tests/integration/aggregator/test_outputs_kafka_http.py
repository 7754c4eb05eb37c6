"""The outputs for real: snapshot records on the broker, /metrics over HTTP with PostgreSQL's figures."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from services.aggregator.bootstrap import build_outputs
from services.aggregator.config import AggregatorSettings
from services.aggregator.consume.results import BatchResult, PartitionResult
from services.aggregator.domain.model import PoolAggregate
from services.aggregator.outputs.exporter import MetricsExporter
from services.aggregator.outputs.snapshot_stream import SnapshotPublisher
from shared.events import ShareEvent
from shared.http.embedded import HttpServerStartError
from shared.kafka.options import client_options
from shared.kafka.topics import Topic, ensure_topics, topic_specs
from shared.lifecycle import StartedParts
from shared.settings import ServiceSettings
from tests.integration.ingest.helpers import read_topics

pytestmark = pytest.mark.integration


def shares_now(n: int, *, miners: int = 3) -> list[ShareEvent]:
    now = time.time_ns() // 1_000_000 - 61_000  # in the previous (complete) minute or so
    return [ShareEvent.model_validate({
        "event_id": f"e{i}-{now}", "type": "share", "ts": now + i, "node": "n1", "miner": f"m{i % miners}",
        "worker": f"w{i % 2}", "difficulty": 4.0, "status": "accepted"}) for i in range(n)]


def batch_of(model: PoolAggregate, shares: list[ShareEvent]) -> BatchResult:
    return BatchResult(partitions={0: PartitionResult(model, shares=model.ingest_shares(shares))},
                        received={Topic.SHARES: len(shares)}, batch_size=len(shares))


@pytest.fixture
async def topics(kafka_settings: ServiceSettings) -> AsyncIterator[ServiceSettings]:
    await ensure_topics(kafka_settings)
    yield kafka_settings
    admin = AIOKafkaAdminClient(**client_options(kafka_settings))
    await admin.start()
    try:
        await admin.delete_topics([s.name for s in topic_specs(kafka_settings)])
    finally:
        await admin.close()


async def test_snapshot_records_land_on_the_topic_keyed_by_entity(topics: ServiceSettings) -> None:
    publisher = SnapshotPublisher(topics)
    model = PoolAggregate()
    publisher.on_batch(batch_of(model, shares_now(30)))
    try:
        report = await publisher.tick()
        assert report.error is None
    finally:
        await publisher.stop()
        await publisher.stop()
    records = await read_topics(topics, (Topic.SNAPSHOTS,))
    assert {r.topic for r in records} == {f"{topics.kafka_topic_prefix}chimera.snapshots"}
    by_key = {r.key: orjson.loads(r.value) for r in records}
    assert set(by_key) == {b"pool:main", *(f"miner:main/m{i}".encode() for i in range(3)),
                           *(f"worker:main/m{i}/w{j}".encode() for i in range(3) for j in range(2))}
    for key, value in by_key.items():
        entity = key.split(b":")[0].decode()
        assert value["entity"] == entity and value["pool"] == "main"
        assert set(value) == {"entity", "pool", "as_of_ms", "figures"} | (
            {"miner"} if entity == "miner" else {"miner", "worker"} if entity == "worker" else set())
        assert set(value["figures"]["hashrate"]) == {"1m", "5m", "15m", "1h", "24h"}
    assert sum(v["figures"]["submitted"]["1h"] for k, v in by_key.items() if k.startswith(b"worker:")) == 30


def metric_values(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples if s.name == name}


async def test_metrics_over_http_with_performance_and_blocks_from_postgres(
    migrated_pool: asyncpg.Pool,
) -> None:
    now = datetime.now(UTC)
    await migrated_pool.executemany(
        "INSERT INTO performance_metrics (host, service, cpu_usage, memory_usage, disk_usage, ts)"
        " VALUES ($1, 'stratum', $2, $3, $4, $5)",
        [("node-1", 10.0, 20.0, 30.0, now - timedelta(minutes=2)),
         ("node-1", 11.0, 21.0, None, now - timedelta(seconds=5)),  # the latest row per host counts
         ("node-2", 50.0, 60.0, 70.0, now - timedelta(minutes=1)),
         ("gone", 99.0, 99.0, 99.0, now - timedelta(hours=2))])  # older than the max age
    await migrated_pool.execute(
        "INSERT INTO blocks (pool, height, hash, miner, network_difficulty, status, found_at) VALUES"
        " ('main', 1, 'h1', 'm0', 1e12, 'confirmed', now()), ('main', 2, 'h2', 'm1', 1e12, 'orphaned', now())")
    exporter = MetricsExporter(db_pool=migrated_pool, port=0, top_miners=1, allowlist=("m2",))
    model = PoolAggregate()
    exporter.on_batch(batch_of(model, shares_now(30)))
    await exporter.start()
    try:
        await exporter.refresh()
        await exporter.rank()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{exporter.port}") as client:
            response = await client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            text = response.text
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.get("/readyz")).json() == {"status": "ready"}
            # The public API's rules here too: the same headers, no redirect built from Host.
            assert response.headers["x-content-type-options"] == "nosniff"
            slashed = await client.get("/metrics/", headers={"Host": "attacker.example"})
            assert slashed.status_code == 404 and "location" not in slashed.headers
    finally:
        await exporter.stop()
        await exporter.stop()
    assert metric_values(text, "pool_cpu_usage") == {(("host", "node-1"),): 11.0, (("host", "node-2"),): 50.0}
    assert metric_values(text, "pool_memory_usage") == {(("host", "node-1"),): 21.0, (("host", "node-2"),): 60.0}
    assert metric_values(text, "pool_disk_usage") == {(("host", "node-2"),): 70.0}  # node-1's latest has none
    assert metric_values(text, "pool_blocks_found_total") == {(("pool", "main"),): 2.0}
    hashrate = metric_values(text, "miner_hashrate")
    assert {dict(k)["miner"] for k in hashrate} == {"m0", "m2"}  # top 1 (m0 has the most shares) + allow-list
    assert len(hashrate) == 2 * 5
    assert metric_values(text, "pool_active_miners") == {(("pool", "main"),): 3.0}
    assert metric_values(text, "chimera_aggregator_events_total") == {
        (("status", "processed"), ("topic", "pool.shares")): 30.0}


async def test_a_taken_port_is_an_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        exporter = MetricsExporter(db_pool=None, port=port)
        with pytest.raises(HttpServerStartError) as info:
            await exporter.start()
        assert (info.value.host, info.value.port) == ("127.0.0.1", port)
        await exporter.stop()


async def test_build_outputs_starts_and_stops_all_three(
    migrated_pool: asyncpg.Pool, topics: ServiceSettings,
) -> None:
    settings = AggregatorSettings(**{**topics.model_dump(), "metrics_port": 0, "snapshot_interval_s": 0.05})
    # Pool records come from the database (every member's partitions): a minute row to find.
    await migrated_pool.execute(
        "INSERT INTO pool_metrics (pool, ts, accepted, difficulty_accepted)"
        " VALUES ('main', date_trunc('minute', now()) - interval '2 minutes', 5, 5.0)")
    outputs = build_outputs(settings, migrated_pool)
    parts = StartedParts()
    await parts.start(outputs)
    try:
        model = PoolAggregate()
        for output in outputs:
            output.on_batch(batch_of(model, shares_now(5)))
        exporter = outputs[0]
        assert isinstance(exporter, MetricsExporter)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{exporter.port}") as client:
            assert "pool_total_hashrate" in (await client.get("/metrics")).text
        snapshots = outputs[2]
        assert isinstance(snapshots, SnapshotPublisher)
        for _ in range(100):  # the publisher's own task ticks every 50 ms
            if (await read_topics(topics, (Topic.SNAPSHOTS,))):
                break
    finally:
        await parts.stop()
        await parts.stop()
    records = {r.key: orjson.loads(r.value) for r in await read_topics(topics, (Topic.SNAPSHOTS,))}
    assert records[b"pool:main"]["figures"]["shares"]["5m"] == 5
