"""The metrics API over real HTTP: POST -> Kafka -> persister -> PostgreSQL -> GET, for all three kinds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from shared.kafka.topics import Topic
from tests.integration.ingest.conftest import Api
from tests.integration.ingest.helpers import read_topics

pytestmark = pytest.mark.integration


async def eventually(fetch: Callable[[], Awaitable[httpx.Response]], ready: Callable[[Any], bool],
                     timeout_s: float = 20.0) -> Any:
    """Poll a GET until its body satisfies `ready` (the persister writes a moment after the 202)."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = await fetch()
        assert response.status_code == 200, response.text
        body = response.json()
        if ready(body) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


async def test_custom_metric_round_trip(module_api: Api) -> None:
    api = module_api
    ingest, read = await api.headers("ingest"), await api.headers("read")
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    sample = {"name": "rt_queue_depth", "value": 42.5, "labels": {"host": "a", "q": "x';DROP TABLE metrics;--"},
              "type": "gauge", "timestamp": ts.isoformat()}
    response = await api.client.post("/api/metrics", json=sample, headers=ingest)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["accepted"] == 1 and accepted["id"]

    def fetch() -> Awaitable[httpx.Response]:
        return api.client.get("/api/metrics", params={"name": "rt_queue_depth"}, headers=read)
    body = await eventually(fetch, lambda b: len(b["metrics"]) == 1)
    [stored] = body["metrics"]
    assert stored == {"id": accepted["id"], "name": "rt_queue_depth", "value": 42.5, "labels": sample["labels"],
                      "type": "gauge", "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ")}
    # Label filter, and a range that excludes it.
    filtered = await api.client.get("/api/metrics", headers=read, params={
        "name": "rt_queue_depth", "labels": orjson.dumps({"host": "b"}).decode()})
    assert filtered.json() == {"metrics": []}
    matched = await api.client.get("/api/metrics", headers=read, params={
        "name": "rt_queue_depth", "labels": '{"host": "a"}', "from": str(int(ts.timestamp() * 1000))})
    assert len(matched.json()["metrics"]) == 1
    before = await api.client.get("/api/metrics", headers=read, params={
        "name": "rt_queue_depth", "to": ts.isoformat()})
    assert before.json() == {"metrics": []}
    # The same sample travelled through pool.metrics, keyed by its name, for the alerter to see.
    records = [r for r in await read_topics(api.settings, (Topic.METRICS,))
               if orjson.loads(r.value).get("id") == accepted["id"]]
    assert [(r.key, orjson.loads(r.value)["kind"]) for r in records] == [(b"rt_queue_depth", "metric")]
    # The persister counts what it stored on the service's /metrics.
    scrape = (await api.client.get("/metrics")).text
    assert 'chimera_metrics_persisted_total{kind="metric"}' in scrape


async def test_performance_round_trip(module_api: Api) -> None:
    api = module_api
    sample = {"host": "node-7", "service": "stratum", "cpu_usage": 183.5, "memory_usage": 61.0,
              "disk_usage": 70.25, "network_in_bytes": 123_456_789_012, "network_out_bytes": 5,
              "load_average": 3.5, "labels": {"dc": "eu-1"}}
    response = await api.client.post("/api/metrics/performance", json=sample, headers=await api.headers("ingest"))
    assert response.status_code == 202, response.text
    read = await api.headers("read")

    def fetch() -> Awaitable[httpx.Response]:
        return api.client.get("/api/metrics/performance", params={"host": "node-7"}, headers=read)
    body = await eventually(fetch, lambda b: len(b["performance"]) == 1)
    [row] = body["performance"]
    assert row["id"] == response.json()["id"]
    assert {k: row[k] for k in sample} == sample
    other = await api.client.get("/api/metrics/performance", params={"host": "node-7", "service": "db"},
                                 headers=read)
    assert other.json() == {"performance": []}


async def test_miner_report_round_trip(module_api: Api) -> None:
    api = module_api
    ingest = await api.headers("ingest")
    ts = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    # The aggregator's counts for that minute are already there; the report must leave them alone.
    await api.container.pool.execute(
        "INSERT INTO miner_metrics (pool, miner, worker, ts, accepted, difficulty_accepted)"
        " VALUES ('main', 'rt-miner', 'rig1', $1, 7, 448)", ts)
    first = {"miner": "rt-miner", "worker": "rig1", "reported_hashrate": 1.25e13,
             "timestamp": int((ts + timedelta(seconds=12)).timestamp() * 1000)}
    second = {"miner": "rt-miner", "worker": "rig1", "user_agent": "bmminer/2.0",
              "timestamp": (ts + timedelta(seconds=40)).isoformat()}
    for body in (first, second):
        response = await api.client.post("/api/metrics/miner", json=body, headers=ingest)
        assert response.status_code == 202, response.text
    read = await api.headers("read")

    def fetch() -> Awaitable[httpx.Response]:
        return api.client.get("/api/metrics/miner/rt-miner", headers=read)
    body = await eventually(fetch, lambda b: b["rows"] and b["rows"][0]["user_agent"] is not None)
    assert body["miner"] == "rt-miner"
    [row] = body["rows"]
    assert row["ts"] == ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (row["worker"], row["pool"], row["accepted"], row["difficulty_accepted"]) == ("rig1", "main", 7, 448)
    assert (row["reported_hashrate"], row["user_agent"]) == (1.25e13, "bmminer/2.0")
    unknown = await api.client.get("/api/metrics/miner/nobody", headers=read)
    assert unknown.json() == {"miner": "nobody", "rows": []}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/metrics", {"name": "bad-name", "value": 1}, "body.name"),
        ("/api/metrics", {"name": "m", "value": 1, "labels": {"0x": "v"}}, "body.labels"),
        ("/api/metrics", {"name": "m", "value": -2, "type": "counter"}, "body.value"),
        ("/api/metrics", {"name": "m", "value": "7"}, "body.value"),
        ("/api/metrics", {"name": "m", "value": 1, "type": "set"}, "body.type"),
        ("/api/metrics", {"name": "m", "value": 1, "timestamp": "yesterday"}, "body.timestamp"),
        ("/api/metrics/performance", {"host": "h"}, "body"),
        ("/api/metrics/performance", {"host": "h", "memory_usage": -1}, "body.memory_usage"),
        ("/api/metrics/miner", {"miner": "m", "reported_hashrate": 1, "stale": 3}, "body.stale"),
        ("/api/metrics/miner", {"miner": "", "reported_hashrate": 1}, "body.miner"),
    ],
)
async def test_bad_samples_are_422_naming_the_field(module_api: Api, path: str, body: dict[str, Any],
                                                   field: str) -> None:
    response = await module_api.client.post(path, json=body, headers=await module_api.headers("ingest"))
    assert response.status_code == 422, response.text
    error = response.json()
    assert set(error) == {"error", "details"}
    assert field in [d["field"] for d in error["details"]], error


async def test_nan_value_is_refused(module_api: Api) -> None:
    response = await module_api.client.post(
        "/api/metrics", content=b'{"name": "m", "value": NaN}',
        headers={**await module_api.headers("ingest"), "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "body.value"


@pytest.mark.parametrize(
    ("params", "field"),
    [({"from": "last week"}, "query.from"), ({"to": "2026-01-01"}, "query.to"),
     ({"labels": "host=a"}, "query.labels"), ({"labels": '{"a": 1}'}, "query.labels"), ({"limit": "0"}, "query.limit"),
     ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "query.from")],
)
async def test_bad_query_parameters(module_api: Api, params: dict[str, str], field: str) -> None:
    response = await module_api.client.get("/api/metrics", params=params, headers=await module_api.headers("read"))
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == field


async def test_scopes(module_api: Api) -> None:
    api = module_api
    sample = {"name": "scoped", "value": 1}
    assert (await api.client.post("/api/metrics", json=sample)).status_code == 401
    assert (await api.client.post("/api/metrics", json=sample, headers=await api.headers("read"))).status_code == 403
    for path in ("/api/metrics/performance", "/api/metrics/miner"):
        assert (await api.client.post(path, json={}, headers=await api.headers("read"))).status_code == 403
    for path in ("/api/metrics", "/api/metrics/performance", "/api/metrics/miner/alice"):
        assert (await api.client.get(path)).status_code == 401
        assert (await api.client.get(path, headers=await api.headers("ingest"))).status_code == 403
