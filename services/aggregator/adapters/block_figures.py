"""Each pool's round effort and luck from PostgreSQL, for pools that span partitions.

A pool's miners are spread over every input partition, so no partition's
ledger sees the whole pool's work: its snapshot gets these figures from the
database instead, where `pool_metrics` sums every partition and
`blocks.effort` is kept current by the pipeline's EffortRefresher
(maintenance.py). Same definitions as the in-memory ledger: the running
round's effort is the pool's accepted difficulty since its latest block over
that block's network difficulty; luck over the last n blocks with a known
effort is n / sum(effort).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import asyncpg

from ..domain.blocks import LUCK_WINDOWS
from ..errors import db_connection

__all__ = ["PoolBlockFigures", "load_block_figures"]

_LUCK_COLUMNS: Final = ", ".join(
    f"(SELECT luck FROM chimera_pool_luck(l.pool, {n})) AS luck_{n}" for n in LUCK_WINDOWS
)

_SQL: Final = f"""
WITH latest AS (
    SELECT DISTINCT ON (pool) pool, found_at, network_difficulty FROM blocks
    ORDER BY pool, found_at DESC, hash DESC
)
SELECT l.pool, chimera_pool_work(l.pool, l.found_at, now()) / l.network_difficulty AS round_effort,
       {_LUCK_COLUMNS}
FROM latest l
"""


@dataclass(frozen=True, slots=True)
class PoolBlockFigures:
    round_effort: float | None
    luck: dict[str, float | None] = field(default_factory=dict)  # "64", "128", "256" -> luck


async def load_block_figures(pool: asyncpg.Pool, *, timeout_s: float) -> dict[str, PoolBlockFigures]:
    """Per pool with at least one block; raises StoreError."""
    async with db_connection(pool, "reading block figures", timeout_s=timeout_s) as conn:
        rows = await conn.fetch(_SQL)
    return {
        r["pool"]: PoolBlockFigures(r["round_effort"], {str(n): r[f"luck_{n}"] for n in LUCK_WINDOWS})
        for r in rows
    }
