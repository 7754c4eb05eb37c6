"""Fixtures and helpers of the aggregator's integration tests: settings for this test's
topics and schema, producing a stream, running pipelines, reading what they stored."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.aggregator.bootstrap import Aggregator, bootstrap
from services.aggregator.config import AggregatorSettings
from shared.db import connect, migrate_database
from shared.events import TOPIC_BY_TYPE
from shared.kafka.options import client_options
from shared.kafka.producer import EventProducer, OutgoingRecord
from shared.kafka.topics import Topic, ensure_topics, topic_name
from tests.conftest import Endpoints

from .streams import Truth

INPUT = (Topic.SHARES, Topic.BLOCKS, Topic.MINERS)
PARTITIONS = 3


def make_settings(endpoints: Endpoints, topic_prefix: str, schema: str, **overrides: Any) -> AggregatorSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": endpoints.kafka_bootstrap_servers,
        "kafka_topic_prefix": topic_prefix,
        "kafka_topic_partitions": PARTITIONS,
        "database_url": endpoints.database_url,
        "database_schema": schema,
        "database_pool_max_size": 4,
        "aggregator_session_timeout_ms": 6_000,
        "aggregator_heartbeat_interval_ms": 500,
        "aggregator_poll_timeout_ms": 200,
        "aggregator_batch_max_records": 5_000,
        "aggregator_retry_initial_s": 0.1,
        "aggregator_retry_max_s": 1.0,
        "aggregator_maintenance_interval_s": 1.0,
        "aggregator_db_timeout_s": 10.0,
        # Tests run several aggregators at once: each exporter on a free port.
        "metrics_port": 0,
    }
    values.update(overrides)
    return AggregatorSettings(**values)


def settings_env(settings: AggregatorSettings) -> dict[str, str]:
    """The environment that makes `python -m services.aggregator` use these settings."""
    names = ("kafka_bootstrap_servers", "kafka_topic_prefix", "kafka_topic_partitions", "database_url",
             "database_schema", "database_pool_max_size", "aggregator_session_timeout_ms",
             "aggregator_heartbeat_interval_ms", "aggregator_poll_timeout_ms",
             "aggregator_batch_max_records", "aggregator_retry_initial_s", "aggregator_retry_max_s",
             "aggregator_maintenance_interval_s", "aggregator_db_timeout_s", "metrics_port")
    return {name.upper(): str(getattr(settings, name)) for name in names}


@pytest.fixture
async def agg_settings(endpoints: Endpoints, topic_prefix: str, db_schema: str) -> AggregatorSettings:
    settings = make_settings(endpoints, topic_prefix, db_schema)
    await prepare(settings)
    return settings


async def prepare(settings: AggregatorSettings) -> None:
    await migrate_database(settings)
    await ensure_topics(settings)


async def produce(settings: AggregatorSettings, events: Iterable[dict[str, Any]], *,
                  raw: Iterable[tuple[str, bytes, bytes | None]] = ()) -> None:
    """Events to their topics keyed by miner, in order; `raw`: (base topic, key, value) as is."""
    records = [
        OutgoingRecord(topic_name(settings, TOPIC_BY_TYPE[e["type"]]), e["miner"].encode(), orjson.dumps(e))
        for e in events
    ]
    records += [OutgoingRecord(topic_name(settings, base), key, value or b"") for base, key, value in raw]
    producer = EventProducer(settings, linger_ms=20, delivery_timeout_s=60)
    await producer.start()
    try:
        for i in range(0, len(records), 10_000):
            await producer.send_batch(records[i:i + 10_000], timeout_s=60)
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def running(settings: AggregatorSettings, **kwargs: Any) -> AsyncIterator[Aggregator]:
    service = await bootstrap(settings, **kwargs)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def end_offsets(settings: AggregatorSettings) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic_name(settings, base), p) for base in INPUT for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def stored_offsets(conn: asyncpg.Connection, settings: AggregatorSettings) -> dict[tuple[str, int], int]:
    group = topic_name(settings, settings.aggregator_group_id)
    rows = await conn.fetch(
        "SELECT topic, partition, next_offset FROM aggregator_offsets WHERE consumer_group = $1", group)
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def wait_caught_up(settings: AggregatorSettings, *, timeout_s: float = 45.0,
                         check: Any = None) -> None:
    """Until the stored offsets reach the end of every input partition (and `check()` holds)."""
    ends = await end_offsets(settings)
    conn = await connect(settings)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                stored = await stored_offsets(conn, settings)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                stored = {}
                with contextlib.suppress(Exception):
                    await conn.close()
                with contextlib.suppress(Exception):
                    conn = await connect(settings)
            if all(stored.get(tp, 0) >= end for tp, end in ends.items()) and (check is None or check()):
                return
            assert time.monotonic() < deadline, f"not caught up: stored {stored}, ends {ends}"
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def assert_figures(settings: AggregatorSettings, truth: Truth) -> None:
    """Every persisted minute row equals the recount (floats to 1e-9 relative: sums of
    several batches and partitions add in another order than math.fsum)."""
    conn = await connect(settings)
    try:
        rows = await conn.fetch(
            "SELECT pool, miner, worker, (extract(epoch FROM ts) * 1000)::bigint AS ms, accepted, rejected,"
            " stale, difficulty_accepted, best_difficulty,"
            " (extract(epoch FROM last_share_at) * 1000)::bigint AS last_ms, blocks_found FROM miner_metrics")
        got = {(r["pool"], r["miner"], r["worker"], r["ms"]): r for r in rows}
        _compare("miner_metrics", got, truth.workers)
        rows = await conn.fetch(
            "SELECT pool, (extract(epoch FROM ts) * 1000)::bigint AS ms, accepted, rejected, stale,"
            " difficulty_accepted, best_difficulty, NULL::bigint AS last_ms, blocks_found, active_miners,"
            " active_workers FROM pool_metrics")
        _compare("pool_metrics", {(r["pool"], r["ms"]): r for r in rows}, truth.pools, last=False, active=True)
        blocks = await conn.fetch(
            "SELECT hash, pool, status, (extract(epoch FROM found_at) * 1000)::bigint AS found_ms FROM blocks")
        assert {b["hash"]: (b["pool"], b["status"], b["found_ms"]) for b in blocks} == {
            h: (b["pool"], b["status"], b["found_ms"]) for h, b in truth.blocks.items()}
    finally:
        await conn.close()


def _compare(table: str, got: dict, want: dict, *, last: bool = True,  # type: ignore[type-arg]
             active: bool = False) -> None:
    assert set(got) == set(want), (
        f"{table}: {len(set(got) - set(want))} unexpected rows, {len(set(want) - set(got))} missing")
    wrong = []
    for key, w in want.items():
        g = got[key]
        ok = (g["accepted"], g["rejected"], g["stale"], g["blocks_found"]) == (
            w.accepted, w.rejected, w.stale, w.blocks) and g["best_difficulty"] == w.best and math.isclose(
            g["difficulty_accepted"], w.difficulty, rel_tol=1e-9, abs_tol=1e-12)
        if last:
            ok = ok and g["last_ms"] == w.last_ms
        if active:
            ok = ok and (g["active_miners"], g["active_workers"]) == (w.active_miners, w.active_workers)
        if not ok:
            wrong.append((key, dict(g), w))
    assert not wrong, f"{table}: {len(wrong)} rows differ, e.g. {wrong[:2]}"
