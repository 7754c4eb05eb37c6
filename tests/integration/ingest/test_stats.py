"""The stats API over HTTP, from rows inserted into the aggregator's tables: exact figures and empty ones.

Difficulties are small integers so every sum is exact in floating point and
the expected figures can be compared with ==. Each test uses its own pool
name, so the module's shared database serves them all.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from shared.confidence import poisson_interval
from tests.integration.ingest.conftest import Api

pytestmark = pytest.mark.integration

T32 = 2.0**32
WINDOWS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "24h": 86_400}


async def current_minute() -> datetime:
    """The current minute's start, waiting out its last seconds so a test's requests stay in it."""
    now = datetime.now(UTC)
    if now.second >= 55:
        await asyncio.sleep(60.2 - now.second - now.microsecond / 1e6)
        now = datetime.now(UTC)
    return now.replace(second=0, microsecond=0)


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


async def insert_pool_minute(pool: asyncpg.Pool, name: str, ts: datetime, *, difficulty: float, accepted: int,
                             rejected: int = 0, stale: int = 0, miners: int = 0, workers: int = 0) -> None:
    await pool.execute(
        "INSERT INTO pool_metrics (pool, ts, accepted, rejected, stale, difficulty_accepted, active_miners,"
        " active_workers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        name, ts, accepted, rejected, stale, difficulty, miners, workers)


async def insert_worker_minute(pool: asyncpg.Pool, name: str, miner: str, worker: str, ts: datetime, *,
                               difficulty: float, accepted: int, rejected: int = 0, stale: int = 0,
                               best: float = 0.0, last_share_at: datetime | None = None) -> None:
    await pool.execute(
        "INSERT INTO miner_metrics (pool, miner, worker, ts, accepted, rejected, stale, difficulty_accepted,"
        " best_difficulty, last_share_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        name, miner, worker, ts, accepted, rejected, stale, difficulty, best, last_share_at)


async def insert_status(pool: asyncpg.Pool, name: str, miner: str, worker: str, offline_after: datetime,
                        last_share_at: datetime | None = None) -> None:
    """A worker_status row as the aggregator writes it (migration 0006)."""
    await pool.execute(
        "INSERT INTO worker_status (pool, miner, worker, last_share_at, offline_after, source_partition)"
        " VALUES ($1, $2, $3, $4, $5, 0)", name, miner, worker, last_share_at, offline_after)


async def get(api: Api, path: str, **params: str) -> Any:
    response = await api.client.get(path, params=params, headers=await api.headers("read"))
    assert response.status_code == 200, response.text
    return response.json()


async def test_pool_stats_are_empty_figures_without_data(module_api: Api) -> None:
    m = await current_minute()
    body = await get(module_api, "/api/pool/stats", pool="empty-pool")
    assert body == {"hashrate": dict.fromkeys(WINDOWS, 0.0), "shares": dict.fromkeys(WINDOWS, 0),
                    "hashrate_lower": dict.fromkeys(WINDOWS, 0.0), "hashrate_upper": dict.fromkeys(WINDOWS),
                    "shares_per_second": 0.0, "active_miners": 0,
                    "active_workers": 0, "efficiency": None, "blocks_found": 0, "round_effort": None,
                    "luck": {"64": None, "128": None, "256": None}, "as_of": iso(m),
                    "first_data_at": None, "filling": dict.fromkeys(WINDOWS, False)}
    default_pool = await get(module_api, "/api/pool/stats")  # pool=main by default
    assert default_pool["hashrate"] == dict.fromkeys(WINDOWS, 0.0)


async def test_pool_stats_exact_figures(module_api: Api) -> None:
    db, name = module_api.container.pool, "exact-pool"
    m = await current_minute()
    minute = timedelta(minutes=1)
    # (minutes before m, difficulty, accepted, rejected, stale)
    rows = [(1, 60, 6, 1, 0), (3, 120, 10, 0, 2), (10, 300, 20, 2, 0), (30, 600, 40, 0, 0),
            (120, 1200, 50, 5, 5), (1441, 99999, 999, 0, 0)]  # the last is outside 24 hours
    for back, difficulty, accepted, rejected, stale in rows:
        await insert_pool_minute(db, name, m - back * minute, difficulty=difficulty, accepted=accepted,
                                 rejected=rejected, stale=stale, miners=back, workers=2 * back)
    # The current minute is still filling: it counts in no window.
    await insert_pool_minute(db, name, m, difficulty=1_000_000, accepted=1000, miners=50, workers=60)
    await db.execute("INSERT INTO blocks (pool, height, hash, miner, network_difficulty, status, found_at)"
                     " VALUES ($1, 1, 'h1', 'a', 1e12, 'confirmed', now()), ($1, 2, 'h2', 'a', 1e12, 'orphaned', now()),"
                     " ('other-pool', 3, 'h3', 'a', 1e12, 'candidate', now())", name)
    # Liveness: the aggregator's deadlines (pool_metrics' per-minute counts are not what is shown).
    later, earlier = datetime.now(UTC) + timedelta(minutes=5), datetime.now(UTC) - timedelta(seconds=1)
    await insert_status(db, name, "alice", "rig1", later)
    await insert_status(db, name, "alice", "rig2", later)
    await insert_status(db, name, "bob", "rig1", earlier)
    await insert_status(db, "other-pool", "carol", "rig1", later)

    body = await get(module_api, "/api/pool/stats", pool=name)
    assert body["hashrate"] == {
        "1m": 60 * T32 / 60,
        "5m": (60 + 120) * T32 / 300,
        "15m": (60 + 120 + 300) * T32 / 900,
        "1h": (60 + 120 + 300 + 600) * T32 / 3600,
        "24h": (60 + 120 + 300 + 600 + 1200) * T32 / 86_400,
    }
    assert body["shares_per_second"] == (7 + 12) / 300
    assert body["efficiency"] == (6 + 10 + 20 + 40 + 50) / (7 + 12 + 22 + 40 + 60)
    assert (body["active_miners"], body["active_workers"]) == (1, 2)  # alice's two online workers
    assert body["blocks_found"] == 2
    assert body["round_effort"] >= 0 and set(body["luck"]) == {"64", "128", "256"}  # values: test_pool_history
    assert body["as_of"] == iso(m)
    # Data from 1441 minutes back: every window is full.
    assert body["first_data_at"] == iso(m - 1441 * minute)
    assert body["filling"] == dict.fromkeys(WINDOWS, False)


async def test_windows_reaching_back_before_the_pools_first_data_say_filling(module_api: Api) -> None:
    db, name = module_api.container.pool, "young-pool"
    m = await current_minute()
    await insert_pool_minute(db, name, m - timedelta(minutes=20), difficulty=10, accepted=1, miners=1, workers=1)
    await insert_pool_minute(db, name, m - timedelta(minutes=2), difficulty=10, accepted=1, miners=1, workers=1)
    body = await get(module_api, "/api/pool/stats", pool=name)
    assert body["first_data_at"] == iso(m - timedelta(minutes=20))
    # 15m starts at m-15 (after the first data): full; 1h and 24h start before it.
    assert body["filling"] == {"1m": False, "5m": False, "15m": False, "1h": True, "24h": True}


async def test_miner_stats_exact_figures(module_api: Api) -> None:
    db, name = module_api.container.pool, "miner-pool"
    m = await current_minute()
    minute = timedelta(minutes=1)
    now = datetime.now(UTC)
    await insert_worker_minute(db, name, "alice", "rig1", m - minute, difficulty=30, accepted=3, rejected=1,
                               best=700, last_share_at=m - timedelta(seconds=5))
    await insert_worker_minute(db, name, "alice", "rig1", m - 20 * minute, difficulty=90, accepted=9, stale=1,
                               best=900)
    # The current minute: only its last share time counts (rig1 is online because of it).
    await insert_worker_minute(db, name, "alice", "rig1", m, difficulty=5000, accepted=500, best=10**9,
                               last_share_at=now)
    await insert_worker_minute(db, name, "alice", "rig0", m - 6 * minute, difficulty=12, accepted=2,
                               rejected=2, best=50, last_share_at=m - 6 * minute + timedelta(seconds=59))
    await insert_worker_minute(db, name, "alice", "old", m - 2000 * minute, difficulty=1, accepted=1)
    await insert_worker_minute(db, name, "bob", "rig1", m - minute, difficulty=1000, accepted=100)

    body = await get(module_api, "/api/miners/alice/stats", pool=name)
    assert body["miner"] == "alice"
    assert body["hashrate"] == {"1m": 30 * T32 / 60, "5m": 30 * T32 / 300, "15m": (30 + 12) * T32 / 900,
                                "1h": (30 + 90 + 12) * T32 / 3600, "24h": (30 + 90 + 12) * T32 / 86_400}
    assert body["efficiency"] == (3 + 9 + 2) / (4 + 10 + 4)
    rig0, rig1 = body["workers"]  # "old" has no row in the last 24 hours
    assert body["shares"] == {"1m": 3, "5m": 3, "15m": 5, "1h": 14, "24h": 14}
    bounds = (body["hashrate_lower"], body["hashrate"], body["hashrate_upper"])
    assert all(lo <= rate <= hi for lo, rate, hi in (tuple(b[w] for b in bounds) for w in WINDOWS))
    intervals = {key: rig0.pop(key) for key in ("shares", "hashrate_lower", "hashrate_upper")}
    assert rig0 == {"worker": "rig0", "online": False, "last_share_at": iso(m - 5 * minute - timedelta(seconds=1)),
                    "hashrate": {"1m": 0.0, "5m": 0.0, "15m": 12 * T32 / 900, "1h": 12 * T32 / 3600,
                                 "24h": 12 * T32 / 86_400},
                    "accepted": 2, "rejected": 2, "stale": 0, "best_difficulty": 50.0}
    # no share in its last 5 minutes: bounded by its mean share (12 / 2) over that window
    assert intervals["shares"] == {"1m": 0, "5m": 0, "15m": 2, "1h": 2, "24h": 2}
    assert intervals["hashrate_lower"]["5m"] == 0.0
    assert intervals["hashrate_upper"]["5m"] == pytest.approx(poisson_interval(0)[1] * 6 * T32 / 300)
    assert rig1["worker"] == "rig1" and rig1["online"] is True
    assert rig1["hashrate"]["1m"] == 30 * T32 / 60 and rig1["hashrate"]["1h"] == 120 * T32 / 3600
    assert (rig1["accepted"], rig1["rejected"], rig1["stale"], rig1["best_difficulty"]) == (12, 1, 1, 900.0)
    assert datetime.fromisoformat(rig1["last_share_at"]) >= now.replace(microsecond=0)


async def test_known_miner_without_recent_rows_has_empty_figures(module_api: Api) -> None:
    db, name = module_api.container.pool, "quiet-pool"
    m = await current_minute()
    await insert_worker_minute(db, name, "sleepy", "rig1", m - timedelta(days=3), difficulty=1, accepted=1)
    body = await get(module_api, "/api/miners/sleepy/stats", pool=name)
    assert body == {"miner": "sleepy", "hashrate": dict.fromkeys(WINDOWS, 0.0), "shares": dict.fromkeys(WINDOWS, 0),
                    "hashrate_lower": dict.fromkeys(WINDOWS, 0.0), "hashrate_upper": dict.fromkeys(WINDOWS),
                    "efficiency": None, "workers": []}


async def test_unknown_miner_is_404(module_api: Api) -> None:
    headers = await module_api.headers("read")
    for path in ("/api/miners/nobody/stats", "/api/miners/nobody/history"):
        response = await module_api.client.get(path, headers=headers)
        assert response.status_code == 404
        assert set(response.json()) == {"error", "details"}
        assert "nobody" in response.json()["error"]


async def test_history_rows_per_worker_and_minute(module_api: Api) -> None:
    db, name = module_api.container.pool, "history-pool"
    m = await current_minute()
    minute = timedelta(minutes=1)
    await insert_worker_minute(db, name, "carol", "rig2", m - 2 * minute, difficulty=6, accepted=3, rejected=1)
    await insert_worker_minute(db, name, "carol", "rig1", m - 2 * minute, difficulty=4, accepted=2, stale=1)
    await insert_worker_minute(db, name, "carol", "rig1", m - minute, difficulty=120, accepted=60)
    await insert_worker_minute(db, name, "carol", "rig1", m, difficulty=1, accepted=1)  # current: not by default
    await insert_worker_minute(db, name, "carol", "rig1", m - 90 * minute, difficulty=1, accepted=1)  # > 1 hour

    body = await get(module_api, "/api/miners/carol/history", pool=name)
    assert body == [
        {"ts": iso(m - 2 * minute), "worker": "rig1", "accepted": 2, "rejected": 0, "stale": 1,
         "difficulty_accepted": 4.0, "hashrate": 4 * T32 / 60},
        {"ts": iso(m - 2 * minute), "worker": "rig2", "accepted": 3, "rejected": 1, "stale": 0,
         "difficulty_accepted": 6.0, "hashrate": 6 * T32 / 60},
        {"ts": iso(m - minute), "worker": "rig1", "accepted": 60, "rejected": 0, "stale": 0,
         "difficulty_accepted": 120.0, "hashrate": 120 * T32 / 60},
    ]
    ranged = await get(module_api, "/api/miners/carol/history", pool=name, **{
        "from": iso(m - 100 * minute), "to": str(int((m - minute).timestamp() * 1000))})
    assert [(r["ts"], r["worker"]) for r in ranged] == [
        (iso(m - 90 * minute), "rig1"), (iso(m - 2 * minute), "rig1"), (iso(m - 2 * minute), "rig2")]
    limited = await get(module_api, "/api/miners/carol/history", pool=name, limit="1")
    assert len(limited) == 1
    empty = await get(module_api, "/api/miners/carol/history", pool=name, **{
        "from": iso(m - 300 * minute), "to": iso(m - 200 * minute)})
    assert empty == []


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [("/api/pool/stats", {"pool": "bad pool"}, "query.pool"),
     ("/api/miners/alice/history", {"from": "soon"}, "query.from"),
     ("/api/miners/alice/history", {"limit": "0"}, "query.limit")],
)
async def test_bad_parameters(module_api: Api, path: str, params: dict[str, str], field: str) -> None:
    response = await module_api.client.get(path, params=params, headers=await module_api.headers("read"))
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == field


async def test_stats_need_the_read_scope(module_api: Api) -> None:
    for path in ("/api/pool/stats", "/api/miners/a/stats", "/api/miners/a/history"):
        assert (await module_api.client.get(path)).status_code == 401
        assert (await module_api.client.get(path, headers=await module_api.headers("ingest"))).status_code == 403


async def test_miner_stats_online_from_worker_status(module_api: Api) -> None:
    db, name = module_api.container.pool, "status-pool"
    m = await current_minute()
    now = datetime.now(UTC)
    minute = timedelta(minutes=1)
    # slow: last share 12 minutes ago, but at its rate the aggregator expects the next one later
    await insert_worker_minute(db, name, "dave", "slow", m - 12 * minute, difficulty=1, accepted=1,
                               last_share_at=m - 12 * minute)
    await insert_status(db, name, "dave", "slow", now + timedelta(minutes=3), last_share_at=m - 12 * minute)
    # gone: shared 5 seconds ago, then disconnected (deadline passed)
    await insert_worker_minute(db, name, "dave", "gone", m - minute, difficulty=1, accepted=1,
                               last_share_at=now - timedelta(seconds=5))
    await insert_status(db, name, "dave", "gone", now - timedelta(seconds=1))
    # nostatus: no status row, recent share: the 5-minute rule
    await insert_worker_minute(db, name, "dave", "nostatus", m - minute, difficulty=1, accepted=1,
                               last_share_at=now - timedelta(seconds=20))
    body = await get(module_api, "/api/miners/dave/stats", pool=name)
    assert {w["worker"]: w["online"] for w in body["workers"]} == {"gone": False, "nostatus": True, "slow": True}
    pool = await get(module_api, "/api/pool/stats", pool=name)
    assert (pool["active_miners"], pool["active_workers"]) == (1, 1)  # only rows of worker_status count


async def test_history_resolution_from_range_or_step(module_api: Api) -> None:
    from services.aggregator.outputs.rollups import RollupJob

    db, name = module_api.container.pool, "resolution-pool"
    m = await current_minute()
    hour = m.replace(minute=0)
    minute = timedelta(minutes=1)
    # Two complete hours before the current one: 3 minute rows in each, one in the current hour.
    for start in (hour - timedelta(hours=2), hour - timedelta(hours=1)):
        for k, difficulty in ((0, 60), (7, 120), (59, 180)):
            await insert_worker_minute(db, name, "erin", "rig1", start + k * minute, difficulty=difficulty,
                                       accepted=2, rejected=1)
    await insert_worker_minute(db, name, "erin", "rig1", hour, difficulty=5, accepted=1)
    await RollupJob(db).run_pass(lookback=True)

    # 10 hours: hourly rows; without `to` the range ends at the current hour's start
    body = await get(module_api, "/api/miners/erin/history", pool=name, **{"from": iso(hour - timedelta(hours=10))})
    assert body == [
        {"ts": iso(hour - timedelta(hours=h)), "worker": "rig1", "accepted": 6, "rejected": 3, "stale": 0,
         "difficulty_accepted": 360.0, "hashrate": 360 * T32 / 3600}
        for h in (2, 1)
    ]
    # the same range in minutes, asked for explicitly
    minutes = await get(module_api, "/api/miners/erin/history", pool=name, step="1m",
                        **{"from": iso(hour - timedelta(hours=10)), "to": iso(hour)})
    assert [r["difficulty_accepted"] for r in minutes] == [60.0, 120.0, 180.0] * 2
    assert minutes[0]["hashrate"] == 60 * T32 / 60
    # 20 days: daily rows (the current day's row holds whatever rolled up so far)
    days = await get(module_api, "/api/miners/erin/history", pool=name, **{
        "from": iso(hour - timedelta(days=20)), "to": iso(hour + timedelta(hours=1))})
    assert sum(r["accepted"] for r in days) == 13
    assert all(r["hashrate"] == r["difficulty_accepted"] * T32 / 86_400 for r in days)
    assert {datetime.fromisoformat(r["ts"]).time() for r in days} == {datetime.min.time()}
    # a bad step is a 422 naming it
    response = await module_api.client.get("/api/miners/erin/history", params={"pool": name, "step": "2h"},
                                           headers=await module_api.headers("read"))
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "query.step"
