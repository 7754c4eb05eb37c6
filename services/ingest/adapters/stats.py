"""Reads what the aggregator persists for the stats API: `pool_metrics`, `miner_metrics`,
their roll-ups (`*_hourly`, `*_daily`), `worker_status` and `blocks`.

SQL sums each window's complete minutes in one pass (one FILTER per window);
domain/stats.py turns the sums into figures. Liveness (a worker's `online`, a
pool's active miners and workers) comes from `worker_status.offline_after`.
Empty tables give the empty figures (zeros, None efficiency, no workers),
never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

import asyncpg

from services.ingest.domain.stats import (
    STEP_S,
    HistoryRow,
    MinerStats,
    PoolHistoryRow,
    PoolStats,
    Step,
    WindowTotals,
    WorkerTotals,
    history_row,
    miner_stats,
    minute_start,
    pool_history_row,
    pool_stats,
    window_starts,
)
from shared.db.pool_rounds import pool_rounds_sql
from shared.db.window_sums import WINDOW_NAMES, window_sums_sql
from shared.hashrate import LUCK_WINDOWS

_WINDOWS: Final = list(WINDOW_NAMES)  # the SQL's column order


def _totals(row: asyncpg.Record) -> dict[str, WindowTotals]:
    return {name: WindowTotals(row[f"d{i}"], row[f"a{i}"], row[f"r{i}"], row[f"s{i}"])
            for i, name in enumerate(_WINDOWS)}


# $1 pool, $2 current minute m (exclusive end), $3.. window starts; the WHERE bounds make the FILTERs need no end.
# The oldest minute row kept (retention drops older partitions: windows are far shorter).
_POOL_FIRST_DATA: Final = "SELECT min(ts) FROM pool_metrics WHERE pool = $1"

_POOL_SUMS: Final = f"""
SELECT {window_sums_sql(3, "")}
FROM pool_metrics WHERE pool = $1 AND ts >= ${3 + _WINDOWS.index("24h")} AND ts < $2
"""

# $1 pool, $2 miner, $3 m, $4.. window starts. No upper bound in WHERE: last_share_at
# also looks at the current (incomplete) minute and the few ahead of it. The
# worker's status row (if any) gives its liveness deadline.
_WORKER_SUMS: Final = f"""
WITH sums AS (
SELECT worker,
       {window_sums_sql(4, " AND ts < $3")},
       coalesce(max(best_difficulty) FILTER (WHERE ts < $3), 0)::float8 AS best_difficulty,
       max(last_share_at) AS last_share_at
FROM miner_metrics WHERE pool = $1 AND miner = $2 AND ts >= ${4 + _WINDOWS.index("24h")}
GROUP BY worker
)
SELECT sums.*, greatest(sums.last_share_at, ws.last_share_at) AS last_share, ws.offline_after
FROM sums LEFT JOIN worker_status ws ON ws.pool = $1 AND ws.miner = $2 AND ws.worker = sums.worker
"""

# Online workers and the miners with at least one, as the aggregator judged them.
_ACTIVE: Final = """
SELECT count(DISTINCT miner)::integer AS active_miners, count(*)::integer AS active_workers
FROM worker_status WHERE pool = $1 AND offline_after > $2
"""

# History rows per resolution: the minute table or its roll-ups (same columns).
_HISTORY_TABLES: Final[dict[Step, str]] = {
    "1m": "miner_metrics", "1h": "miner_metrics_hourly", "1d": "miner_metrics_daily",
}
_HISTORY: Final = {
    step: f"""
SELECT ts, worker, accepted, rejected, stale, difficulty_accepted FROM {table}
WHERE pool = $1 AND miner = $2 AND ts >= $3 AND ts < $4
ORDER BY ts, worker LIMIT $5
"""
    for step, table in _HISTORY_TABLES.items()
}

# The pool's rows per resolution; the roll-ups keep each hour's or day's largest active counts.
_POOL_HISTORY: Final = {
    step: f"""
SELECT ts, accepted, rejected, stale, difficulty_accepted, blocks_found,
       active_miners{suffix} AS active_miners, active_workers{suffix} AS active_workers
FROM {table} WHERE pool = $1 AND ts >= $2 AND ts < $3
ORDER BY ts LIMIT $4
"""
    for step, table, suffix in (("1m", "pool_metrics", ""), ("1h", "pool_metrics_hourly", "_max"),
                                ("1d", "pool_metrics_daily", "_max"))
}

_POOL_ROUNDS: Final = pool_rounds_sql(one_pool=True)

_BLOCKS: Final = """
SELECT height, hash, miner, worker, found_at, status, effort, network_difficulty, reward, confirmations
FROM blocks WHERE pool = $1 ORDER BY found_at DESC, hash DESC LIMIT $2
"""

_MINER_KNOWN: Final = """
SELECT EXISTS (SELECT 1 FROM miner_metrics WHERE pool = $1 AND miner = $2)
    OR EXISTS (SELECT 1 FROM blocks WHERE pool = $1 AND miner = $2)
"""


class UnknownMiner(Exception):
    def __init__(self, pool: str, miner: str) -> None:
        self.pool = pool
        self.miner = miner
        super().__init__(f"no miner {miner!r} in pool {pool!r}")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BlockRow:
    height: int
    hash: str
    miner: str
    worker: str
    found_at: datetime
    status: str
    effort: float | None  # None: the pool's first block (its round's start is unknown)
    network_difficulty: float
    reward: Decimal | None
    confirmations: int


class StatsReader:
    def __init__(self, pool: asyncpg.Pool, hashrate_multiplier: float) -> None:
        self._pool = pool
        self.hashrate_multiplier = hashrate_multiplier

    async def pool_stats(self, pool: str, *, now: datetime | None = None) -> PoolStats:
        now = now or _now()
        m = minute_start(now)
        starts = list(window_starts(m).values())
        async with self._pool.acquire() as conn:
            sums = await conn.fetchrow(_POOL_SUMS, pool, m, *starts)
            active = await conn.fetchrow(_ACTIVE, pool, now)
            rounds = await conn.fetchrow(_POOL_ROUNDS, pool)
            first_data_at = await conn.fetchval(_POOL_FIRST_DATA, pool)
        assert sums is not None and active is not None
        return pool_stats(
            _totals(sums),
            active_miners=active["active_miners"],
            active_workers=active["active_workers"],
            blocks_found=rounds["blocks_found"] if rounds else 0,
            round_effort=rounds["round_effort"] if rounds else None,
            luck={str(n): rounds[f"luck_{n}"] if rounds else None for n in LUCK_WINDOWS},
            as_of=m,
            multiplier=self.hashrate_multiplier,
            first_data_at=first_data_at,
        )

    async def miner_stats(self, pool: str, miner: str, *, now: datetime | None = None) -> MinerStats:
        """Raises UnknownMiner when the pool has never seen the miner."""
        now = now or _now()
        m = minute_start(now)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_WORKER_SUMS, pool, miner, m, *window_starts(m).values())
            if not rows and not await conn.fetchval(_MINER_KNOWN, pool, miner):
                raise UnknownMiner(pool, miner)
        workers = [WorkerTotals(r["worker"], _totals(r), r["best_difficulty"], r["last_share"], r["offline_after"])
                   for r in rows]
        return miner_stats(miner, workers, now=now, multiplier=self.hashrate_multiplier)

    async def miner_history(self, pool: str, miner: str, *, start: datetime, end: datetime,
                            limit: int, step: Step = "1m") -> list[HistoryRow]:
        """Rows of resolution `step` with start <= ts < end, oldest first; raises
        UnknownMiner as miner_stats does."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_HISTORY[step], pool, miner, start, end, limit)
            if not rows and not await conn.fetchval(_MINER_KNOWN, pool, miner):
                raise UnknownMiner(pool, miner)
        step_s = STEP_S[step]
        return [history_row(r["ts"], r["worker"], r["accepted"], r["rejected"], r["stale"],
                            r["difficulty_accepted"], multiplier=self.hashrate_multiplier, step_s=step_s)
                for r in rows]

    async def pool_history(self, pool: str, *, start: datetime, end: datetime, limit: int,
                           step: Step = "1m") -> list[PoolHistoryRow]:
        """The pool's rows of resolution `step` with start <= ts < end, oldest first (an unknown
        pool has none: pools are named by the events, not registered)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_POOL_HISTORY[step], pool, start, end, limit)
        return [pool_history_row(r["ts"], r["accepted"], r["rejected"], r["stale"], r["difficulty_accepted"],
                                 active_miners=r["active_miners"], active_workers=r["active_workers"],
                                 blocks_found=r["blocks_found"], multiplier=self.hashrate_multiplier,
                                 step_s=STEP_S[step])
                for r in rows]

    async def pool_blocks(self, pool: str, *, limit: int) -> list[BlockRow]:
        """The pool's latest blocks, newest first."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_BLOCKS, pool, limit)
        return [BlockRow(**dict(r)) for r in rows]
