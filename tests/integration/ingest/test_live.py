"""GET /live over real HTTP, fed from the real broker: what a page gets, and when its stream ends."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions

from services.ingest.config import IngestSettings
from shared.kafka.options import client_options
from shared.kafka.topics import Topic, topic_name
from tests.conftest import Endpoints
from tests.integration.ingest.conftest import Api, make_settings, serve
from tests.integration.ingest.live_helpers import (
    Event,
    events,
    miner_key,
    next_event,
    publish,
    publish_snapshots,
)
from tests.unit.ingest.live_samples import alert_record, miner_record, pool_record, worker_record
from tests.waiting import until

HEARTBEAT_S = 0.3


@pytest.fixture
def ingest_settings(endpoints: Endpoints, topic_prefix: str, db_schema: str) -> IngestSettings:
    # Heartbeats fast enough to see; a long grace, so a stream ending on stop is not the grace running out.
    return make_settings(endpoints, topic_prefix, db_schema, live_heartbeat_s=HEARTBEAT_S,
                         live_max_streams_per_client=2, shutdown_grace_s=30)


async def knows_pool(api: Api) -> None:
    await publish_snapshots(api.settings, pool_record(), miner_record("bc1qalice", hashrate=4e12))
    await until(lambda: api.container.live.latest_pool("main") is not None
                and api.container.live.miner("main", "bc1qalice") is not None)


async def next_record(stream: AsyncIterator[Event]) -> Event:
    """The next event that is not a heartbeat."""
    while True:
        event = await next_event(stream)
        if event.kind != "comment":
            return event


async def test_a_page_gets_the_latest_figures_then_its_own_miners_records_only(api: Api) -> None:
    await knows_pool(api)
    async with api.client.stream("GET", "/live", params={"pool": "main", "miner": "bc1qalice"},
                                 headers=await api.headers("read")) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response)
        assert await next_event(stream) == Event("retry", "3000")
        pool = await next_record(stream)
        assert pool.kind == "pool" and json.loads(pool.data)["figures"]["active_miners"] == 2
        miner = await next_record(stream)
        assert miner.kind == "miner" and json.loads(miner.data)["figures"]["hashrate"]["1h"] == 4e12
        assert int(miner.id or 0) > int(pool.id or 0)
        await publish_snapshots(api.settings, worker_record("bc1qbob", "rig1"), worker_record("bc1qalice", "rig1"))
        await publish_snapshots(api.settings, worker_record("bc1qalice", "rig2"))
        seen = [await next_record(stream) for _ in range(2)]
        # Bob's worker, published before alice's rig2, never came.
        assert [(e.kind, json.loads(e.data)["miner"], json.loads(e.data)["worker"]) for e in seen] == [
            ("worker", "bc1qalice", "rig1"), ("worker", "bc1qalice", "rig2")]
    sent = api.container.registry.get_sample_value("chimera_live_records_sent_total", {"event": "worker"})
    assert sent == 2


async def test_heartbeats_keep_a_quiet_stream_open_and_alerts_reach_every_page(api: Api) -> None:
    async with api.client.stream("GET", "/live", params={"pool": "main"},
                                 headers=await api.headers("read")) as response:
        stream = events(response)
        assert await next_event(stream) == Event("retry", "3000")
        started = time.monotonic()
        assert await next_event(stream) == Event("comment", "heartbeat")
        assert time.monotonic() - started < 5 * HEARTBEAT_S + 2
        await until(lambda: api.container.live_feed is not None and api.container.live_feed.positioned)
        await publish(api.settings, Topic.ALERTS, alert_record("fp-down", miner="bc1qbob"))
        alert = await next_record(stream)
        assert alert.kind == "alert" and json.loads(alert.data)["fingerprint"] == "fp-down"


async def test_a_miner_key_streams_its_own_miner_only(api: Api) -> None:
    await knows_pool(api)
    alice = await miner_key(api, "bc1qalice")
    refused = await api.client.get("/live", params={"miner": "bc1qbob"}, headers=alice)
    assert refused.status_code == 403
    assert refused.json()["details"] == [{"field": "query.miner",
                                          "message": "this API key is limited to miner bc1qalice"}]
    async with api.client.stream("GET", "/live", headers=alice) as response:  # its own miner by default
        assert response.status_code == 200
        stream = events(response)
        assert await next_event(stream) == Event("retry", "3000")
        first = await next_record(stream)
        assert first.kind == "miner" and json.loads(first.data)["miner"] == "bc1qalice"  # no pool record
        await publish(api.settings, Topic.ALERTS, alert_record("fp-bob", miner="bc1qbob"),
                      alert_record("fp-pool"), alert_record("fp-alice", miner="bc1qalice"))
        alert = await next_record(stream)
        assert json.loads(alert.data)["fingerprint"] == "fp-alice"


async def test_no_key_is_401_and_streams_past_the_clients_bound_are_429(api: Api) -> None:
    assert (await api.client.get("/live")).status_code == 401
    headers = await api.headers("read")
    async with api.client.stream("GET", "/live", headers=headers) as first, \
            api.client.stream("GET", "/live", headers=headers) as second:
        assert first.status_code == second.status_code == 200
        third = await api.client.get("/live", headers=headers)
        assert third.status_code == 429 and third.headers["retry-after"] == "5"
        assert api.container.registry.get_sample_value("chimera_live_streams_open") == 2
    await until(lambda: api.container.live.open_streams == 0)  # a client that goes away gives its slot back
    async with api.client.stream("GET", "/live", headers=headers) as again:
        assert again.status_code == 200


async def test_malformed_records_are_counted_and_the_feed_goes_on(api: Api) -> None:
    await publish_snapshots(api.settings, b"not json", worker_record(worker="<script>"), pool_record())
    registry = api.container.registry

    def malformed() -> float | None:
        return registry.get_sample_value("chimera_live_records_malformed_total", {"source": "snapshot"})

    # The three records are keyed apart, so they may sit in different partitions, read in any
    # order: the feed goes on past the bad ones (the pool record arrives) and counts both.
    await until(lambda: api.container.live.latest_pool("main") is not None and malformed() == 2)
    assert malformed() == 2


async def test_a_server_stop_ends_open_streams_at_once(endpoints: Endpoints, topic_prefix: str,
                                                       db_schema: str) -> None:
    settings = make_settings(endpoints, topic_prefix, db_schema, shutdown_grace_s=30)
    server = serve(settings)
    api = await anext(server)
    try:
        headers = await api.headers("read")
        async with httpx.AsyncClient(base_url=api.base_url, timeout=60) as client, \
                client.stream("GET", "/live", headers=headers) as response:
            stream = events(response)
            assert await next_event(stream) == Event("retry", "3000")
            started = time.monotonic()
            stopping = asyncio.create_task(server.aclose(), name="stop-test-server")
            try:
                async with asyncio.timeout(10):  # well before the 30 s grace
                    rest = [event async for event in stream]
            finally:
                await stopping
            assert all(event.kind == "comment" for event in rest)  # ended cleanly, nothing half-written
            assert time.monotonic() - started < 10
    finally:
        await server.aclose()


async def test_partitions_added_to_a_topic_are_read_without_a_reconnect(endpoints: Endpoints, topic_prefix: str,
                                                                        db_schema: str) -> None:
    settings = make_settings(endpoints, topic_prefix, db_schema, live_partitions_check_s=0.3)
    server = serve(settings)
    api = await anext(server)
    try:
        feed = api.container.live_feed
        assert feed is not None
        await until(lambda: feed.positioned)
        topic = topic_name(settings, Topic.SNAPSHOTS)
        admin = AIOKafkaAdminClient(**client_options(settings))
        await admin.start()
        try:
            before = len((await admin.describe_topics([topic]))[0]["partitions"])
            await admin.create_partitions({topic: NewPartitions(total_count=before + 2)})
        finally:
            await admin.close()
        # Written to the newest partition only, right after it exists: before the feed looks again.
        producer = AIOKafkaProducer(**client_options(settings), acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, pool_record(), partition=before + 1)
        finally:
            await producer.stop()
        await until(lambda: api.container.live.latest_pool("main") is not None, timeout_s=15)
    finally:
        await server.aclose()
