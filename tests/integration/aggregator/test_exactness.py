"""Exactness: a messy stream with known ground truth ends in exactly the right rows.

Duplicates, reordering, late shares (up to 23 h), too-late ones (over 24 h,
counted and dropped), blocks later confirmed or orphaned; several pools,
miners and workers over three partitions. Also: round effort and luck from
the stored minute rows.
"""

from __future__ import annotations

import itertools
import math
import time
from datetime import UTC, datetime

import pytest

from services.aggregator.outputs.pool_queries import load_pool_figures
from shared.db import connect
from shared.db.pool import create_pool

from .conftest import assert_figures, produce, running, wait_caught_up
from .streams import MIN, make_stream

pytestmark = pytest.mark.integration


async def test_every_minute_row_equals_the_recount(agg_settings) -> None:  # type: ignore[no-untyped-def]
    events, truth = make_stream(seed=11)
    assert truth.duplicates > 1000 and truth.too_late > 20 and len(truth.blocks) >= 5
    await produce(agg_settings, events)
    async with running(agg_settings) as service:
        await wait_caught_up(agg_settings)
        # Every block's effort, however old (the periodic pass looks back 25 h of wall clock).
        await service.effort.refresh(since=datetime(2009, 1, 1, tzinfo=UTC))
    await assert_figures(agg_settings, truth)
    stats = service.stats  # complete once stopped: the last batch's result comes after its commit
    assert stats.too_late == truth.too_late
    assert stats.received["pool.shares"] == sum(1 for e in events if e["type"] == "share")
    assert sum(stats.duplicates.values()) == truth.duplicates, (stats.duplicates, stats.batches)
    await _assert_effort_and_luck(agg_settings, truth)


async def _assert_effort_and_luck(settings, truth) -> None:  # type: ignore[no-untyped-def]
    """Effort = pool accepted difficulty since the pool's previous block (minutes pro rata)
    / network difficulty; luck = blocks / sum(effort)."""
    conn = await connect(settings)
    pool_conn = await create_pool(settings)
    try:
        now_ms = time.time_ns() // 1_000_000
        stored = await load_pool_figures(pool_conn, as_of_ms=now_ms, live_at_ms=now_ms, multiplier=2.0**32,
                                         timeout_s=10.0)  # what the pool snapshot records carry
        rows = await conn.fetch("SELECT hash, effort FROM blocks")
        got = {r["hash"]: r["effort"] for r in rows}
        for pool in {b["pool"] for b in truth.blocks.values()}:
            found = sorted((b["found_ms"], h) for h, b in truth.blocks.items() if b["pool"] == pool)
            assert got[found[0][1]] is None  # the pool's first block: round start unknown
            efforts = []
            for (prev_ms, _), (found_ms, block_hash) in itertools.pairwise(found):
                work = 0.0
                for (p, minute_ms), row in truth.pools.items():
                    overlap = min(minute_ms + MIN, found_ms) - max(minute_ms, prev_ms)
                    if p == pool and overlap > 0:
                        work += row.difficulty * overlap / MIN
                want = work / truth.blocks[block_hash]["nd"]
                assert math.isclose(got[block_hash], want, rel_tol=1e-9), block_hash
                efforts.append(want)
            if efforts:
                blocks, luck = await conn.fetchrow("SELECT * FROM chimera_pool_luck($1, 64)", pool)
                assert blocks == len(efforts)
                assert math.isclose(luck, len(efforts) / sum(efforts), rel_tol=1e-9)
                assert math.isclose(stored[pool]["luck"]["64"], luck, rel_tol=1e-12)
            last_ms, last_hash = found[-1]
            running_work = sum(row.difficulty * (MIN - max(0, last_ms - minute_ms)) / MIN
                               for (p, minute_ms), row in truth.pools.items()
                               if p == pool and minute_ms + MIN > last_ms)
            assert stored[pool]["blocks_found"] == len(found)
            assert math.isclose(stored[pool]["round_effort"], running_work / truth.blocks[last_hash]["nd"],
                                rel_tol=1e-9), pool
    finally:
        await pool_conn.close()
        await conn.close()
