"""PostgreSQL stopped while alerts change: the alerter waits and retries, loses no transition,
and afterwards the stored and the published state agree.

A PRIVATE PostgreSQL (the dev stack's code, its own folder and port) so it can
be stopped without disturbing the other tests.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from chimera.devstack.postgres import PostgresNode
from services.alerter.config import AlerterSettings
from shared.clock import now_ms
from shared.db.migrate import migrate_database
from shared.db.pool import create_pool
from shared.kafka.topics import Topic, ensure_topics
from tests.conftest import Endpoints
from tests.integration.ingest.helpers import read_topics
from tests.waiting import until

from .conftest import PARTITIONS, add_rule, running, send_snapshots, worker_record

pytestmark = pytest.mark.integration


async def test_transitions_made_while_postgres_is_away_land_when_it_returns(
    private_postgres: PostgresNode, endpoints: Endpoints, topic_prefix: str,
) -> None:
    url = private_postgres.status().database_url
    assert url is not None
    settings = AlerterSettings(
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers, kafka_topic_prefix=topic_prefix,
        kafka_topic_partitions=PARTITIONS, database_url=url, database_schema="alerts", metrics_port=0,
        alerter_tick_s=0.25, alerter_rules_reload_s=0.25, alerter_db_timeout_s=2.0, alerter_retry_max_s=0.5,
        log_level="ERROR")
    await migrate_database(settings)
    await ensure_topics(settings)
    pool = await create_pool(settings)
    try:
        await add_rule(pool)
        async with running(settings) as service:
            await send_snapshots(settings, worker_record(now_ms(), worker="w1", online=False))
            await until(lambda: pool.fetchval("SELECT count(*) FROM alerts WHERE status = 'firing'"))
            await asyncio.to_thread(private_postgres.down)
            # While it is away: w1 comes back, w2 and w3 go offline.
            await send_snapshots(settings, worker_record(now_ms(), worker="w1", online=True),
                                 worker_record(now_ms(), worker="w2", online=False),
                                 worker_record(now_ms(), worker="w3", online=False))
            registry = service.telemetry.registry
            await until(lambda: _above(registry.get_sample_value("chimera_alerter_store_failures_total") or 0, 0),
                        30)
            await asyncio.to_thread(private_postgres.up)
            await pool.expire_connections()

            async def settled() -> Any:
                rows = await pool.fetch("SELECT labels->>'worker' AS w, status FROM alerts ORDER BY 1")
                return rows if [(r["w"], r["status"]) for r in rows] == [
                    ("w1", "resolved"), ("w2", "firing"), ("w3", "firing")] else None

            await until(settled, 60)

            async def published() -> Any:
                # PostgreSQL going away between Kafka's ack and the relay's mark re-sends a batch
                # (docs/alerter.md: consumers drop repeats by fingerprint, status and starts_at):
                # a repeat must be the very same record.
                got = [orjson.loads(r.value) for r in await read_topics(settings, (Topic.ALERTS,))]
                distinct: dict[tuple[str, str, str], Any] = {}
                for record in got:
                    first = distinct.setdefault((record["fingerprint"], record["status"], record["starts_at"]), record)
                    assert record == first, (record, first)
                return list(distinct.values()) if len(distinct) == 4 else None

            records = await until(published, 60)
    finally:
        await pool.close()
    assert sorted((r["labels"]["worker"], r["status"]) for r in records) == [
        ("w1", "firing"), ("w1", "resolved"), ("w2", "firing"), ("w3", "firing")]


async def _above(value: float, floor: float) -> bool:
    return value > floor


