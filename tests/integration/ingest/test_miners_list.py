"""GET /api/miners over real HTTP, from miner records published on the real broker."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.ingest.conftest import Api
from tests.integration.ingest.live_helpers import miner_key, publish_snapshots
from tests.unit.ingest.live_samples import miner_record
from tests.waiting import until

# name: (1h hashrate, 5m hashrate, workers online)
MINERS = {
    "bc1qalice": (5e12, 1e12, 3),
    "bc1qbob": (9e12, 2e12, 1),
    "Carol.rig": (1e12, 9e12, 7),
    "dave": (5e12, 3e12, 2),
    "erin": (2e12, 4e12, 5),
}


@pytest.fixture(scope="module")
async def published(module_api: Api) -> Api:
    now_ms = time.time_ns() // 1_000_000
    await publish_snapshots(module_api.settings, *(
        miner_record(name, as_of_ms=now_ms, workers_online=online, last_share_at_ms=now_ms - 1_000,
                     by_window={"1m": 0.0, "5m": five_minutes, "15m": 0.0, "1h": hour, "24h": 0.0})
        for name, (hour, five_minutes, online) in MINERS.items()))
    await until(lambda: module_api.container.live.miner_count == len(MINERS), timeout_s=30)
    return module_api


async def get(api: Api, **params: Any) -> dict[str, Any]:
    response = await api.client.get("/api/miners", params=params, headers=await api.headers("read"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def names(body: dict[str, Any]) -> list[str]:
    return [m["miner"] for m in body["miners"]]


async def test_top_by_hour_hashrate_by_default_in_pages(published: Api) -> None:
    first = await get(published, limit=2)
    assert (first["total"], first["offset"], first["limit"]) == (5, 0, 2)
    assert names(first) == ["bc1qbob", "bc1qalice"]  # alice and dave tie: name order
    rest = await get(published, limit=2, offset=2)
    assert names(rest) == ["dave", "erin"]
    assert names(await get(published, limit=2, offset=4)) == ["Carol.rig"]
    assert first["as_of"] is not None


async def test_each_miner_carries_its_figures(published: Api) -> None:
    bob = (await get(published, limit=1))["miners"][0]
    assert bob["hashrate"]["1h"] == 9e12 and bob["hashrate"]["5m"] == 2e12
    assert set(bob["hashrate_lower"]) == set(bob["hashrate_upper"]) == set(bob["efficiency"]) == {
        "1m", "5m", "15m", "1h", "24h"}
    assert (bob["workers_online"], bob["workers_total"], bob["online"]) == (1, 3, True)
    assert bob["last_share_at"].endswith("Z") or "+00:00" in bob["last_share_at"]


@pytest.mark.parametrize(("params", "expected"), [
    ({"sort": "hashrate_5m"}, ["Carol.rig", "erin", "dave", "bc1qbob", "bc1qalice"]),
    ({"sort": "miner", "order": "asc"}, ["Carol.rig", "bc1qalice", "bc1qbob", "dave", "erin"]),
    ({"sort": "workers_online", "order": "asc"}, ["bc1qbob", "dave", "bc1qalice", "erin", "Carol.rig"]),
    ({"q": "BC1Q"}, ["bc1qbob", "bc1qalice"]),
    ({"q": "nobody"}, []),
])
async def test_sorting_and_search(published: Api, params: dict[str, str], expected: list[str]) -> None:
    body = await get(published, **params)
    assert names(body) == expected and body["total"] == len(expected)


async def test_a_miner_key_lists_only_itself(published: Api) -> None:
    response = await published.client.get("/api/miners", headers=await miner_key(published, "dave"))
    assert response.status_code == 200
    assert names(response.json()) == ["dave"] and response.json()["total"] == 1


@pytest.mark.parametrize(("params", "field"), [
    ({"sort": "hashrate"}, "query.sort"), ({"order": "up"}, "query.order"), ({"limit": 0}, "query.limit"),
    ({"limit": 501}, "query.limit"), ({"offset": -1}, "query.offset"), ({"q": "a b"}, "query.q"),
    ({"q": "x" * 129}, "query.q"), ({"pool": "main/x"}, "query.pool"),
])
async def test_bad_parameters_are_422_naming_the_field(published: Api, params: dict[str, Any], field: str) -> None:
    response = await published.client.get("/api/miners", params=params, headers=await published.headers("read"))
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["details"]] == [field]


async def test_no_key_is_401_and_an_ingest_key_403(published: Api) -> None:
    assert (await published.client.get("/api/miners")).status_code == 401
    response = await published.client.get("/api/miners", headers=await published.headers("ingest"))
    assert response.status_code == 403
