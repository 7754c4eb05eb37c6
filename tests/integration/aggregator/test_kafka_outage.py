"""Kafka down at start-up, then down again mid-stream: the aggregator waits for it both
times (no exit, no crash), catches up afterwards, and every figure is exact.

Runs a PRIVATE broker (the dev stack's code, its own state folder and free ports)
so it can be stopped and started without disturbing the other tests.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from chimera.devstack.kafka import KafkaNode
from services.aggregator.startup import start_when_ready
from tests.conftest import Endpoints

from .conftest import assert_figures, make_settings, prepare, produce, wait_caught_up
from .streams import make_stream

pytestmark = pytest.mark.integration


async def test_waits_for_kafka_at_start_up_and_rides_out_an_outage_mid_stream(
    private_kafka: KafkaNode, endpoints: Endpoints, topic_prefix: str, db_schema: str,
) -> None:
    settings = make_settings(Endpoints(private_kafka.bootstrap_servers, endpoints.database_url),
                             topic_prefix, db_schema, aggregator_batch_max_records=1_000)
    await prepare(settings)
    events, truth = make_stream(seed=43, shares=30_000)
    third = len(events) // 3
    await produce(settings, events[:third])

    await asyncio.to_thread(private_kafka.down)
    stop = asyncio.Event()
    starting = asyncio.create_task(start_when_ready(settings, stop))
    await asyncio.sleep(4.0)
    assert not starting.done(), "start-up gave up (or started) while the broker was down"
    await asyncio.to_thread(private_kafka.up)
    service = await asyncio.wait_for(starting, timeout=120)
    assert service is not None
    try:
        deadline = time.monotonic() + 60
        while service.stats.records < 2_000:
            assert time.monotonic() < deadline, "no progress after the broker came up"
            await asyncio.sleep(0.05)
        await asyncio.to_thread(private_kafka.down)
        await asyncio.sleep(3.0)
        assert service.pipeline.running, "the pipeline died with the broker"
        await asyncio.to_thread(private_kafka.up)
        await produce(settings, events[third:])
        await wait_caught_up(settings, timeout_s=120)
        assert service.pipeline.running
    finally:
        await service.stop()
    await assert_figures(settings, truth)
