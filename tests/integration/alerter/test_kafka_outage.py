"""The broker stopped while an alert fires: the alerter rides it out, and afterwards the stored
and the published state agree (the firing record reaches chimera.alerts once Kafka is back).

A PRIVATE broker (the dev stack's code, its own folder and ports) so it can be
stopped without disturbing the other tests.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import orjson
import pytest

from chimera.devstack.kafka import KafkaNode
from services.alerter.config import AlerterSettings
from shared.clock import now_ms
from shared.kafka.topics import Topic
from tests.conftest import Endpoints
from tests.integration.ingest.helpers import read_topics
from tests.waiting import until

from .conftest import PARTITIONS, add_rule, running, send_snapshots, worker_record

pytestmark = pytest.mark.integration


async def test_an_alert_fired_around_a_broker_outage_is_published_once_it_returns(
    private_kafka: KafkaNode, endpoints: Endpoints, topic_prefix: str, pool: asyncpg.Pool, db_schema: str,
) -> None:
    settings = AlerterSettings(
        kafka_bootstrap_servers=private_kafka.bootstrap_servers, kafka_topic_prefix=topic_prefix,
        kafka_topic_partitions=PARTITIONS, database_url=endpoints.database_url, database_schema=db_schema,
        metrics_port=0, alerter_tick_s=0.25, alerter_rules_reload_s=0.25, log_level="ERROR")
    await add_rule(pool, duration_ms=3_000)
    async with running(settings) as service:
        await send_snapshots(settings, worker_record(now_ms(), online=False))
        await until(lambda: pool.fetchrow("SELECT 1 FROM alerts WHERE status = 'pending'"), 60)
        await asyncio.to_thread(private_kafka.down)
        # The duration completes while the broker is away: the tick that fires it cannot
        # travel through Kafka, so the alert fires once the broker is back.
        await asyncio.sleep(5.0)
        assert not service.streams.app.crashed  # rode it out: no crash, no exit
        await asyncio.to_thread(private_kafka.up)
        row = await until(lambda: pool.fetchrow("SELECT * FROM alerts WHERE status = 'firing'"), 120)

        async def published() -> Any:
            got = [orjson.loads(r.value) for r in await read_topics(settings, (Topic.ALERTS,))]
            return got or None

        records = await until(published, 120)
    # At least once (adapters/relay.py): a send that timed out while the broker came back is sent
    # again, the same record, which consumers drop as a repeat (seen on a loaded machine).
    assert {orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records} == {
        orjson.dumps(records[0], option=orjson.OPT_SORT_KEYS)}, records
    assert (records[0]["status"], records[0]["alert_id"]) == ("firing", row["id"])
