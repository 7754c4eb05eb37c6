"""PostgreSQL stopped for a while mid-stream: the aggregator waits and retries (nothing
durable moves past what PostgreSQL holds), catches up afterwards, and the figures are exact.

Runs a PRIVATE PostgreSQL (the dev stack's code, its own state folder and a free
port) so it can be stopped and started without disturbing the other tests.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from chimera.devstack.config import PROJECT_ROOT, DevStackConfig
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def private_postgres() -> Iterator[PostgresNode]:
    # Under the project folder (like tests/integration/test_devstack.py): the postgres
    # system user must reach the data directory when the tests run as root.
    state = PROJECT_ROOT / ".chimera" / "test-stacks" / uuid.uuid4().hex[:8]
    config = replace(DevStackConfig.from_env(), state_dir=state, postgres_port=_free_port())
    node = PostgresNode(config)
    node.up()
    try:
        yield node
    finally:
        node.down()
        shutil.rmtree(state, ignore_errors=True)


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
