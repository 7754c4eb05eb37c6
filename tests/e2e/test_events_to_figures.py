"""End to end over real HTTP, Kafka and PostgreSQL: events posted to the ingest API come
out of the aggregator as the contract's figures (section 2), the same in the stats API,
on the aggregator's /metrics and on the snapshot topic; a client's retry of a whole
batch counts nothing twice."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from services.aggregator.domain.windows import minute_weight
from services.aggregator.outputs.exporter import MetricsExporter
from shared.kafka.options import client_options
from shared.kafka.topics import Topic, topic_name
from tests.conftest import Endpoints
from tests.integration.aggregator.conftest import make_settings as aggregator_settings
from tests.integration.aggregator.conftest import running, wait_caught_up
from tests.integration.ingest.conftest import make_settings as ingest_settings
from tests.integration.ingest.conftest import serve

pytestmark = pytest.mark.e2e

MIN = 60_000
T32 = 2.0**32


def _events(now_ms: int) -> list[dict[str, Any]]:
    """Six workers (three miners) sharing every ~2 s for the last three minutes, up to a
    second ago (so all six are online), and their connections."""
    run = uuid.uuid4().hex[:6]
    events: list[dict[str, Any]] = []
    for i in range(540):
        status = "rejected" if i % 10 == 0 else "stale" if i % 25 == 0 else "accepted"
        events.append({"event_id": f"{run}-s{i}", "type": "share", "ts": now_ms - 3 * MIN + i * 333,
                       "pool": "main", "node": "n1", "miner": f"bc1qe2e{i % 3}", "worker": f"rig{i % 2}",
                       "difficulty": float(1024 * (1 + i % 4)), "status": status})
    events += [{"event_id": f"{run}-c{k}", "type": "miner", "ts": now_ms - 4 * MIN, "node": "n1",
                "miner": f"bc1qe2e{k}", "worker": f"rig{w}", "state": "connected"}
               for k in range(3) for w in range(2)]
    events.append({"event_id": f"{run}-b", "type": "block", "ts": now_ms - 90_000, "node": "n1",
                   "miner": "bc1qe2e1", "worker": "rig1", "height": 900_001, "hash": uuid.uuid4().hex * 2,
                   "network_difficulty": 1e6, "reward": 3.125, "status": "candidate"})
    return events


def _expected(events: list[dict[str, Any]], window: str, as_of_ms: int) -> tuple[float, float, float]:
    """(accepted difficulty, accepted, submitted) a window holds as of `as_of_ms`."""
    difficulty = accepted = submitted = 0.0
    for e in events:
        if e["type"] != "share":
            continue
        w = minute_weight(window, as_of_ms, e["ts"] - e["ts"] % MIN)
        submitted += w
        if e["status"] == "accepted":
            accepted += w
            difficulty += w * e["difficulty"]
    return difficulty, accepted, submitted


def _gauge(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"{name}{labels} not exported")


async def _latest_pool_snapshot(settings: Any) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(topic_name(settings, Topic.SNAPSHOTS), **client_options(settings),
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        latest: dict[str, Any] | None = None
        deadline = time.monotonic() + 20
        while latest is None or time.monotonic() < deadline - 15:  # read on a little past the first
            assert time.monotonic() < deadline, "no pool snapshot"
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.key == b"pool:main":
                        latest = orjson.loads(record.value)
        return latest
    finally:
        await consumer.stop()


async def test_posted_events_become_the_contracts_figures_everywhere(
    endpoints: Endpoints, topic_prefix: str, db_schema: str,
) -> None:
    api_settings = ingest_settings(endpoints, topic_prefix, db_schema)
    settings = aggregator_settings(endpoints, topic_prefix, db_schema, snapshot_interval_s=0.5)
    if time.time() % 60 > 35:  # the reads below must all fall in one minute (~10 s of work)
        await asyncio.sleep(61 - time.time() % 60)
    events = _events(time.time_ns() // 1_000_000 - 1_000)
    async for api in serve(api_settings):
        write, read = await api.headers("ingest"), await api.headers("read")
        for _ in range(2):  # the client timed out and sent the whole batch again
            posted = await api.client.post("/v1/events", json=events, headers=write)
            assert posted.status_code == 202, posted.text
        async with running(settings) as service:
            await wait_caught_up(settings)
            stats = (await api.client.get("/api/pool/stats", headers=read)).json()
            exporter = next(o for o in service.outputs if isinstance(o, MetricsExporter))
            await exporter.refresh()
            async with httpx.AsyncClient() as client:
                metrics = (await client.get(f"http://127.0.0.1:{exporter.port}/metrics")).text
            snapshot = await _latest_pool_snapshot(settings)

    # Contract section 2: sum(accepted difficulty in the window) * 2^32 / W, by event time,
    # over the complete minutes before `as_of` (the 24h window: see minute_weight).
    as_of_ms = int(datetime.fromisoformat(stats["as_of"]).timestamp() * 1000)
    for window, seconds in (("1m", 60), ("5m", 300), ("15m", 900), ("1h", 3600), ("24h", 86400)):
        want = _expected(events, window, as_of_ms)[0] * T32 / seconds
        assert want > 0
        assert math.isclose(stats["hashrate"][window], want, rel_tol=1e-9), window
        assert math.isclose(_gauge(metrics, "pool_total_hashrate", pool="main", window=window), want,
                            rel_tol=1e-9), window
    _, accepted, submitted = _expected(events, "24h", as_of_ms)
    assert math.isclose(stats["efficiency"], accepted / submitted, rel_tol=1e-12)  # each share once
    assert (stats["active_miners"], stats["active_workers"]) == (3, 6)
    assert stats["blocks_found"] == 1
    assert _gauge(metrics, "pool_blocks_found_total", pool="main") == 1
    figures = snapshot["figures"]
    assert figures["blocks_found"] == 1 and figures["round_effort"] is not None
    assert figures["as_of_ms"] == as_of_ms
    difficulty, accepted, submitted = _expected(events, "5m", as_of_ms)
    assert (figures["shares"]["5m"], figures["submitted"]["5m"]) == (accepted, submitted)
    assert math.isclose(figures["hashrate"]["5m"], difficulty * T32 / 300, rel_tol=1e-9)
