"""A pool's blocks found, its round effort now and its luck, from `blocks` and the SQL functions
`chimera_pool_work` / `chimera_pool_luck` (migration 0006): the aggregator's pool snapshot
records and the stats API read the same figures the same way.

Round effort: accepted difficulty since the pool's latest block over that block's network
difficulty (1.0 = 100 %); luck over the last n blocks: blocks found / blocks expected.
"""

from __future__ import annotations

from shared.hashrate import LUCK_WINDOWS


def pool_rounds_sql(*, one_pool: bool) -> str:
    """Rows (pool, blocks_found, round_effort, luck_64, luck_128, luck_256): every pool with a
    block, or only the pool `$1` when `one_pool`."""
    where = "WHERE pool = $1" if one_pool else ""
    luck = ", ".join(f"(SELECT luck FROM chimera_pool_luck(b.pool, {n})) AS luck_{n}" for n in LUCK_WINDOWS)
    return f"""
WITH latest AS (
    SELECT DISTINCT ON (pool) pool, found_at, network_difficulty FROM blocks {where}
    ORDER BY pool, found_at DESC, hash DESC
), found AS (
    SELECT pool, count(*)::bigint AS n FROM blocks {where} GROUP BY pool
)
SELECT b.pool, f.n AS blocks_found,
       chimera_pool_work(b.pool, b.found_at, now()) / b.network_difficulty AS round_effort, {luck}
FROM latest b JOIN found f USING (pool)
"""
