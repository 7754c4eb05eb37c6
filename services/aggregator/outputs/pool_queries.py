"""Every pool's snapshot figures from PostgreSQL, which sums every input partition.

A pool's miners are spread over all input partitions, and with several
aggregator processes each holds only some of them: a pool record built from
one process's models would carry part of the pool, and "latest record per
key" on the snapshot topic would then flip between parts. So pool records are
built from the database, where every member's batches meet: window sums from
`pool_metrics` (complete minutes, the same SQL as the stats API), online
workers from `worker_status`, blocks from `blocks`, and round effort and luck
from `chimera_pool_work` / `chimera_pool_luck` (`blocks.effort` is kept
current by the pipeline's EffortRefresher). Same definitions as the in-memory
ledger: the running round's effort is the pool's accepted difficulty since its
latest block over that block's network difficulty; luck over the last n blocks
with a known effort is n / sum(effort).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import asyncpg

from shared.db.pool_rounds import pool_rounds_sql
from shared.db.window_sums import WINDOW_NAMES, window_sums_sql
from shared.hashrate import LUCK_WINDOWS

from ..adapters.db import db_connection
from ..domain.accumulator import WindowTotals
from ..domain.figures import window_figures
from ..domain.minutes import MINUTE_MS
from ..domain.windows import WINDOWS_MS

__all__ = ["load_pool_figures"]

# $1 the current minute (exclusive end), $2.. the windows' starts.
_SUMS: Final = f"""
SELECT pool, {window_sums_sql(2)}
FROM pool_metrics WHERE ts >= ${2 + WINDOW_NAMES.index("24h")} AND ts < $1
GROUP BY pool
"""

# $1: the instant liveness is judged at.
_ACTIVE: Final = """
SELECT pool, count(DISTINCT miner)::integer AS miners, count(*)::integer AS workers
FROM worker_status WHERE offline_after > $1 GROUP BY pool
"""

_BLOCKS: Final = pool_rounds_sql(one_pool=False)


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def load_pool_figures(
    pool: asyncpg.Pool, *, as_of_ms: int, live_at_ms: int, multiplier: float, timeout_s: float,
) -> dict[str, dict[str, Any]]:
    """Pool name -> the figures of its snapshot record (the schema of docs/aggregator.md), for
    every pool with minute rows in the last 24 hours or a block; raises StoreError."""
    m = as_of_ms - as_of_ms % MINUTE_MS
    starts = [_ts(m - WINDOWS_MS[name]) for name in WINDOW_NAMES]
    async with db_connection(pool, "reading pool figures", timeout_s=timeout_s) as conn:
        sums = {r["pool"]: r for r in await conn.fetch(_SUMS, _ts(m), *starts)}
        active = {r["pool"]: r for r in await conn.fetch(_ACTIVE, _ts(live_at_ms))}
        blocks = {r["pool"]: r for r in await conn.fetch(_BLOCKS)}
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(sums) | set(blocks)):
        row = sums.get(name)
        n = range(len(WINDOW_NAMES))
        totals = WindowTotals(
            m,
            tuple(float(row[f"a{i}"]) if row else 0.0 for i in n),
            tuple(float(row[f"a{i}"] + row[f"r{i}"] + row[f"s{i}"]) if row else 0.0 for i in n),
            tuple(float(row[f"d{i}"]) if row else 0.0 for i in n),
            tuple(WINDOWS_MS[w] for w in WINDOW_NAMES),
        )
        live, found = active.get(name), blocks.get(name)
        out[name] = window_figures(totals, multiplier=multiplier, extra={
            "active_miners": live["miners"] if live else 0,
            "active_workers": live["workers"] if live else 0,
            "blocks_found": found["blocks_found"] if found else 0,
            "round_effort": found["round_effort"] if found else None,
            "luck": {str(k): found[f"luck_{k}"] if found else None for k in LUCK_WINDOWS},
        })
    return out
