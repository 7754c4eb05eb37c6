"""The pool's history and blocks over HTTP (`/api/pool/history`, `/api/pool/blocks`) and the round
effort and luck of `/api/pool/stats`, from rows inserted into the aggregator's tables."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from shared.confidence import poisson_interval
from tests.integration.ingest.conftest import Api
from tests.integration.ingest.test_stats import T32, current_minute, get, insert_pool_minute, iso

pytestmark = pytest.mark.integration

MINUTE = timedelta(minutes=1)


async def test_minute_rows_with_interval_and_activity(module_api: Api) -> None:
    db, name = module_api.container.pool, "history-pool"
    m = await current_minute()
    await insert_pool_minute(db, name, m - 3 * MINUTE, difficulty=600, accepted=10, rejected=2, miners=3, workers=7)
    await insert_pool_minute(db, name, m - 2 * MINUTE, difficulty=0, accepted=0, miners=2, workers=4)
    await insert_pool_minute(db, name, m - 90 * MINUTE, difficulty=60, accepted=1)  # before the default hour
    await insert_pool_minute(db, name, m, difficulty=60, accepted=1)  # the current minute: not complete
    rows = await get(module_api, "/api/pool/history", pool=name)
    assert [r["ts"] for r in rows] == [iso(m - 3 * MINUTE), iso(m - 2 * MINUTE)]
    first, second = rows
    low, high = poisson_interval(10)
    rate = 600 * T32 / 60
    assert (first["accepted"], first["rejected"], first["hashrate"]) == (10, 2, rate)
    assert math.isclose(first["hashrate_lower"], low * rate / 10) and math.isclose(first["hashrate_upper"],
                                                                                 high * rate / 10)
    assert (first["active_miners"], first["active_workers"], first["blocks_found"]) == (3, 7, 0)
    # A minute with activity alone (the nine after a share): no hashrate, an unknown upper bound.
    assert (second["hashrate"], second["hashrate_lower"], second["hashrate_upper"]) == (0.0, 0.0, None)
    assert (second["active_miners"], second["active_workers"]) == (2, 4)
    wide = await get(module_api, "/api/pool/history", pool=name, **{"from": iso(m - 2 * 60 * MINUTE)})
    assert len(wide) == 3
    # A `to` in the future still ends at the current minute: it is not complete.
    ahead = await get(module_api, "/api/pool/history", pool=name, **{"to": iso(m + 5 * MINUTE)})
    assert [r["ts"] for r in ahead] == [iso(m - 3 * MINUTE), iso(m - 2 * MINUTE)]


async def test_hour_rows_give_the_busiest_minute(module_api: Api) -> None:
    db, name = module_api.container.pool, "hourly-pool"
    m = await current_minute()
    hour = m.replace(minute=0) - timedelta(hours=2)
    await db.execute(
        "INSERT INTO pool_metrics_hourly (pool, ts, accepted, rejected, stale, difficulty_accepted,"
        " active_miners_max, active_workers_max, minutes, blocks_found) VALUES ($1, $2, 50, 1, 0, 3600, 9, 20, 60, 1)",
        name, hour)
    rows = await get(module_api, "/api/pool/history", pool=name, step="1h",
                     **{"from": iso(hour - timedelta(hours=1))})
    assert len(rows) == 1
    assert rows[0]["hashrate"] == 3600 * T32 / 3600
    assert (rows[0]["active_miners"], rows[0]["active_workers"], rows[0]["blocks_found"]) == (9, 20, 1)


async def test_blocks_newest_first_with_effort_and_the_pool_round(module_api: Api) -> None:
    db, name = module_api.container.pool, "blocky-pool"
    m = await current_minute()
    for height, back, effort, status in ((10, 50, None, "confirmed"), (11, 20, 0.5, "orphaned"),
                                         (12, 5, 2.0, "candidate")):
        await db.execute(
            "INSERT INTO blocks (pool, height, hash, miner, worker, network_difficulty, status, effort, found_at,"
            " reward) VALUES ($1, $2, $3, 'alice', 'rig1', 1000, $4, $5, $6, 3.125)",
            name, height, f"{name}-{height}", status, effort, m - back * MINUTE)
    blocks = await get(module_api, "/api/pool/blocks", pool=name)
    assert [(b["height"], b["effort"], b["status"]) for b in blocks] == [
        (12, 2.0, "candidate"), (11, 0.5, "orphaned"), (10, None, "confirmed")]
    assert blocks[0]["found_at"] == iso(m - 5 * MINUTE) and blocks[0]["reward"] == "3.125"
    assert len(await get(module_api, "/api/pool/blocks", pool=name, limit="1")) == 1
    # Since the latest block (5 minutes ago): two whole minutes of 500 difficulty each.
    await insert_pool_minute(db, name, m - 3 * MINUTE, difficulty=500, accepted=5)
    await insert_pool_minute(db, name, m - 2 * MINUTE, difficulty=500, accepted=5)
    stats = await get(module_api, "/api/pool/stats", pool=name)
    assert math.isclose(stats["round_effort"], 1000 / 1000)
    # Luck over the blocks with an effort: 2 blocks / (0.5 + 2.0) expected.
    assert all(math.isclose(stats["luck"][n], 2 / 2.5) for n in ("64", "128", "256"))


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/api/pool/history", {"step": "2m"}, "query.step"),
    ("/api/pool/history", {"limit": "0"}, "query.limit"),
    ("/api/pool/history", {"from": "yesterday"}, "query.from"),
    ("/api/pool/blocks", {"limit": "1001"}, "query.limit"),
    ("/api/pool/blocks", {"pool": "a/b"}, "query.pool"),
])
async def test_bad_parameters_name_the_field(module_api: Api, path: str, params: dict[str, str], field: str) -> None:
    response = await module_api.client.get(path, params=params, headers=await module_api.headers("read"))
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["details"]]


@pytest.mark.parametrize("path", ["/api/pool/history", "/api/pool/blocks"])
async def test_read_scope_needed(module_api: Api, path: str) -> None:
    assert (await module_api.client.get(path)).status_code == 401
    assert (await module_api.client.get(path, headers=await module_api.headers("ingest"))).status_code == 403
