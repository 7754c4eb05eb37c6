"""The alerter against the real broker and database: settings, a running service, inputs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest

from services.alerter.adapters.rule_store import RuleStore
from services.alerter.bootstrap import Alerter, bootstrap
from services.alerter.config import AlerterSettings
from services.alerter.domain.rules import Rule
from shared.db.migrate import migrate_database
from shared.db.pool import create_pool
from shared.kafka.producer import EventProducer, OutgoingRecord
from shared.kafka.topics import Topic, ensure_topics, topic_name
from tests.conftest import Endpoints

PARTITIONS = 3


@pytest.fixture
async def alerter_settings(endpoints: Endpoints, topic_prefix: str, db_schema: str) -> AlerterSettings:
    settings = AlerterSettings(
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers, kafka_topic_prefix=topic_prefix,
        kafka_topic_partitions=PARTITIONS, database_url=endpoints.database_url, database_schema=db_schema,
        database_pool_max_size=4, metrics_port=0, alerter_tick_s=0.25, alerter_rules_reload_s=0.25,
        alerter_stale_after_s=30.0, log_level="WARNING",
    )
    await migrate_database(settings)
    await ensure_topics(settings)
    return settings


@pytest.fixture
async def pool(alerter_settings: AlerterSettings) -> AsyncIterator[asyncpg.Pool]:
    made = await create_pool(alerter_settings)
    try:
        yield made
    finally:
        await made.close()


@contextlib.asynccontextmanager
async def running(settings: AlerterSettings) -> AsyncIterator[Alerter]:
    service = await bootstrap(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def add_rule(pool: asyncpg.Pool, **fields: Any) -> Rule:
    values: dict[str, Any] = {"id": 0, "name": "worker offline", "metric": "worker_online", "operator": "==",
                              "threshold": 0.0, "severity": "critical", "group_by": ("miner", "worker")}
    values.update(fields)
    return await RuleStore(pool).create(Rule(**values))


def worker_record(at_ms: int, *, miner: str = "m1", worker: str = "w1", online: bool = True,
                  pool: str = "main") -> tuple[bytes, bytes]:
    windows = ("1m", "5m", "15m", "1h", "24h")
    figures = {"as_of_ms": at_ms - at_ms % 60_000, "online": online, "last_share_at_ms": at_ms - 10_000,
               "hashrate": dict.fromkeys(windows, 1e12), "hashrate_lower": dict.fromkeys(windows, 0.9e12),
               "hashrate_upper": dict.fromkeys(windows, 1.1e12), "shares": dict.fromkeys(windows, 10),
               "submitted": dict.fromkeys(windows, 10), "shares_per_second": dict.fromkeys(windows, 0.1),
               "efficiency": dict.fromkeys(windows, 1.0)}
    value = {"entity": "worker", "pool": pool, "miner": miner, "worker": worker, "as_of_ms": at_ms,
             "figures": figures}
    return f"worker:{pool}/{miner}/{worker}".encode(), orjson.dumps(value)


async def send_snapshots(settings: AlerterSettings, *records: tuple[bytes, bytes],
                         raw: tuple[bytes, ...] = ()) -> None:
    topic = topic_name(settings, Topic.SNAPSHOTS)
    producer = EventProducer(settings)
    await producer.start()
    try:
        await producer.send_batch([OutgoingRecord(topic, key, value) for key, value in records]
                                  + [OutgoingRecord(topic, b"bad", value) for value in raw])
    finally:
        await producer.stop()


