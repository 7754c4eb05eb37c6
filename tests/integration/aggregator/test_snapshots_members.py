"""With two aggregator processes in one group, every pool snapshot record on the topic
carries the WHOLE pool, whichever member published it (each member holds only some of
the pool's partitions; consumers keep the latest record per key)."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from services.aggregator.config import AggregatorSettings
from shared.kafka.options import client_options
from shared.kafka.topics import Topic, topic_name

from .conftest import produce, running, wait_caught_up
from .streams import MIN, make_stream

pytestmark = pytest.mark.integration


async def _pool_records(settings: AggregatorSettings, pool: str, since_ms: int) -> list[dict]:  # type: ignore[type-arg]
    consumer = AIOKafkaConsumer(topic_name(settings, Topic.SNAPSHOTS), **client_options(settings),
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        out = []
        for _ in range(6):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    if r.key == f"pool:{pool}".encode() and r.timestamp >= since_ms:
                        out.append(orjson.loads(r.value))
        return out
    finally:
        await consumer.stop()


async def test_every_members_pool_record_is_the_whole_pool(agg_settings: AggregatorSettings) -> None:
    settings = agg_settings.model_copy(update={"snapshot_interval_s": 0.3})
    now_ms = time.time_ns() // 1_000_000
    events, truth = make_stream(seed=53, shares=4_000, hours=0.1, pools=("main",), late_fraction=0.0,
                                too_late=0, blocks=2, end_ms=now_ms - 2_000)
    await produce(settings, events)
    async with running(settings, client_id="member-a") as a, running(settings, client_id="member-b") as b:
        await wait_caught_up(settings, check=lambda: bool(a.pipeline.partitions.owned)
                             and bool(b.pipeline.partitions.owned))
        assert set(a.pipeline.partitions.owned).isdisjoint(b.pipeline.partitions.owned)
        since = time.time_ns() // 1_000_000
        await asyncio.sleep(1.5)  # a few ticks of each member
        records = await _pool_records(settings, "main", since)
    assert len(records) >= 4
    for record in records:
        figures = record["figures"]
        as_of = figures["as_of_ms"]
        whole = [row for (pool, minute), row in truth.pools.items()
                 if pool == "main" and as_of - 5 * MIN <= minute < as_of]
        assert figures["shares"]["5m"] == sum(row.accepted for row in whole)
        assert figures["submitted"]["5m"] == sum(row.accepted + row.rejected + row.stale for row in whole)
        assert figures["blocks_found"] == len(truth.blocks)
