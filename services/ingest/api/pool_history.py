"""A pool's history and its blocks: what the console's pool page draws over time."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Final

from fastapi import Query, Request
from pydantic import BaseModel

from services.ingest.api.common_params import TIME_PARAM_DOC, container, error_responses, time_range
from services.ingest.api.stats import HISTORY_DEFAULT_SPAN, HISTORY_MAX_LIMIT, READ, PoolName
from services.ingest.domain.stats import (
    HOUR_ROWS_UP_TO,
    MINUTE_ROWS_UP_TO,
    Step,
    history_step,
    minute_start,
    step_floor,
)
from shared.http.guard import guarded_router

router = guarded_router(tags=["stats"])

BLOCKS_MAX_LIMIT: Final = 1_000


class PoolHistoryRowOut(BaseModel):
    ts: datetime
    accepted: int
    rejected: int
    stale: int
    difficulty_accepted: float
    hashrate: float
    hashrate_lower: float
    hashrate_upper: float | None
    active_miners: int
    active_workers: int
    blocks_found: int


class BlockOut(BaseModel):
    height: int
    hash: str
    miner: str
    worker: str
    found_at: datetime
    status: str
    effort: float | None
    network_difficulty: float
    reward: Decimal | None
    confirmations: int


@router.get(
    "/api/pool/history", response_model=list[PoolHistoryRowOut], responses=error_responses(401, 403, 422),
    summary="The pool's history by minute, hour or day",
    description="One row per step (`1m`, `1h` or `1d`) whose start `ts` is in [`from`, `to`), oldest first, "
                "for steps with data; `hashrate` = difficulty_accepted * HASHRATE_MULTIPLIER / the step's "
                "seconds, with its 95% interval (`hashrate_lower`, `hashrate_upper`; Garwood's, as the stats; "
                "upper null for a step without accepted shares). `active_workers` / `active_miners`: workers "
                "(miners) with a share, any status, in that minute or the nine before it, counted exactly once "
                "by the aggregator (docs/aggregator.md); hour and day rows give their busiest minute's count. "
                f"Without `step` the range picks it: up to {int(MINUTE_ROWS_UP_TO.total_seconds() // 3600)} "
                f"hours minutes, up to {HOUR_ROWS_UP_TO.days} days hours, else days. Default range: the last "
                "hour of complete minutes. The range never reaches past the start of the current step, "
                "whatever `to` says: an incomplete minute, hour or day is not history yet.",
)
async def pool_history(
    request: Request,
    pool: PoolName = "main",
    start: Annotated[str | None, Query(alias="from", description=f"Inclusive: {TIME_PARAM_DOC}")] = None,
    end: Annotated[str | None, Query(alias="to", description=f"Exclusive: {TIME_PARAM_DOC}")] = None,
    limit: Annotated[int, Query(ge=1, le=HISTORY_MAX_LIMIT)] = 10_000,
    step: Annotated[Step | None, Query(description="Row resolution; default by the range's length")] = None,
    _: Any = READ,
) -> list[PoolHistoryRowOut]:
    now = datetime.now(UTC)
    since, until = time_range(start, end, default_span=HISTORY_DEFAULT_SPAN, default_end=minute_start(now))
    resolution = history_step(since, until, step)
    # Never past the current step's start: an incomplete step, and the minutes ahead holding
    # activity alone, are not history yet (a chart's last point would dip).
    until = min(until, step_floor(now, resolution))
    rows = await container(request).stats.pool_history(pool, start=since, end=until, limit=limit,
                                                       step=resolution)
    return [PoolHistoryRowOut(**asdict(r)) for r in rows]


@router.get(
    "/api/pool/blocks", response_model=list[BlockOut], responses=error_responses(401, 403, 422),
    summary="The pool's latest blocks",
    description="Newest first. `effort`: the pool's accepted difficulty between the previous block and this one "
                "over this block's network difficulty (1.0 = 100 %; null for the pool's first block, whose round "
                "start is unknown, and while the aggregator has not computed it yet). `status`: candidate, "
                "confirmed or orphaned. `reward` in coin units, exact.",
)
async def pool_blocks(
    request: Request,
    pool: PoolName = "main",
    limit: Annotated[int, Query(ge=1, le=BLOCKS_MAX_LIMIT)] = 50,
    _: Any = READ,
) -> list[BlockOut]:
    rows = await container(request).stats.pool_blocks(pool, limit=limit)
    return [BlockOut(**asdict(r)) for r in rows]
