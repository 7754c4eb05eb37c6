"""PostgreSQL stopped for a while mid-stream: the aggregator waits and retries (nothing
durable moves past what PostgreSQL holds), catches up afterwards, and the figures are exact.

Runs a PRIVATE PostgreSQL (the dev stack's code, its own state folder and a free
port) so it can be stopped and started without disturbing the other tests.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from chimera.devstack.postgres import PostgresNode
from tests.conftest import Endpoints

from .conftest import (
    assert_figures,
    make_settings,
    prepare,
    produce,
    running,
    wait_caught_up,
)
from .streams import make_stream

pytestmark = pytest.mark.integration


async def test_postgres_down_mid_stream_then_back_is_exact(
    private_postgres: PostgresNode, endpoints: Endpoints, topic_prefix: str,
) -> None:
    url = private_postgres.status().database_url
    assert url is not None
    settings = make_settings(Endpoints(endpoints.kafka_bootstrap_servers, url), topic_prefix, "agg",
                             aggregator_batch_max_records=1_000, aggregator_db_timeout_s=5.0)
    await prepare(settings)
    events, truth = make_stream(seed=41, shares=30_000)
    third = len(events) // 3
    await produce(settings, events[:third])
    async with running(settings) as service:
        deadline = time.monotonic() + 20
        while service.stats.records < 2_000:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await asyncio.to_thread(private_postgres.down)
        await produce(settings, events[third: 2 * third])  # the stream goes on meanwhile
        await asyncio.sleep(3.0)
        failures = service.stats.store_failures
        batches = service.stats.batches
        await asyncio.sleep(1.0)
        assert service.stats.batches == batches, "a batch was reported durable while PostgreSQL was down"
        assert failures >= 1 and service.pipeline.partitions.pending  # waiting to take them over again
        await asyncio.to_thread(private_postgres.up)
        await produce(settings, events[2 * third:])
        await wait_caught_up(settings, timeout_s=45)
        assert service.pipeline.running
    await assert_figures(settings, truth)
