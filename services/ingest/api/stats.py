"""The stats API (docs/contract.md section 3), read from what the aggregator persists."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, Field

from services.ingest.adapters.stats import UnknownMiner
from services.ingest.api.common_params import (
    MINER_PARAM_PATTERN,
    TIME_PARAM_DOC,
    container,
    error_responses,
    time_range,
)
from services.ingest.domain.stats import (
    EFFICIENCY_WINDOW,
    HOUR_ROWS_UP_TO,
    MINUTE_ROWS_UP_TO,
    ONLINE_WITHIN,
    SHARES_RATE_WINDOW,
    WORKER_TOTALS_WINDOW,
    Step,
    history_step,
    minute_start,
    step_floor,
)
from shared.events import NAME_PATTERN
from shared.http.auth import Principal, Scope, ensure_miner, require_scope
from shared.http.errors import ApiError
from shared.http.guard import guarded_router

router = guarded_router(tags=["stats"])

READ = Depends(require_scope(Scope.READ))
# A miner's own routes: a key limited to that miner reads them too (`_own_miner`).
_MINER_READ = Depends(require_scope(Scope.READ, miner=True))
Window = Literal["1m", "5m", "15m", "1h", "24h"]
PoolName = Annotated[str, Query(min_length=1, max_length=64, pattern=NAME_PATTERN)]
MinerId = Annotated[str, Path(min_length=1, max_length=128, pattern=MINER_PARAM_PATTERN)]
HISTORY_DEFAULT_SPAN: Final = timedelta(hours=1)
HISTORY_MAX_LIMIT: Final = 100_000

_WINDOWS_DOC: Final = (
    "Windows are made of complete minutes only: with m the start of the current minute, window W covers "
    "[m - W, m), so figures are stable and lag real time by at most a minute. "
    "Hashrate (H/s) = sum of accepted difficulty over W * HASHRATE_MULTIPLIER / W seconds."
)


class PoolStatsOut(BaseModel):
    hashrate: dict[Window, float]
    shares: dict[Window, int]
    hashrate_lower: dict[Window, float]
    hashrate_upper: dict[Window, float | None]
    shares_per_second: float
    active_miners: int
    active_workers: int
    efficiency: float | None
    blocks_found: int
    round_effort: float | None
    luck: dict[Literal["64", "128", "256"], float | None]
    as_of: datetime
    first_data_at: datetime | None = Field(
        description="the pool's oldest minute with data (null without data)")
    filling: dict[Window, bool] = Field(
        description="per window: true while it reaches back before `first_data_at`, so its figures read low")


class WorkerStatsOut(BaseModel):
    worker: str
    online: bool
    last_share_at: datetime | None
    hashrate: dict[Window, float]
    shares: dict[Window, int]
    hashrate_lower: dict[Window, float]
    hashrate_upper: dict[Window, float | None]
    accepted: int
    rejected: int
    stale: int
    best_difficulty: float


class MinerStatsOut(BaseModel):
    miner: str
    hashrate: dict[Window, float]
    shares: dict[Window, int]
    hashrate_lower: dict[Window, float]
    hashrate_upper: dict[Window, float | None]
    efficiency: float | None
    workers: list[WorkerStatsOut]


class HistoryRowOut(BaseModel):
    ts: datetime
    worker: str
    accepted: int
    rejected: int
    stale: int
    difficulty_accepted: float
    hashrate: float


_MINER_KEY_DOC: Final = " A `miner:<name>` key reads its own miner only: another miner is 403 (`path.miner`)."


def _own_miner(principal: Principal, miner: str) -> None:
    # Before any lookup: another miner's name answers 403 whether or not the pool knows it.
    ensure_miner(principal, miner, field="path.miner")


def _not_found(exc: UnknownMiner) -> ApiError:
    return ApiError(404, f"no miner {exc.miner!r} in pool {exc.pool!r}",
                    [{"field": "path.miner", "message": "unknown miner"}])


@router.get(
    "/api/pool/stats", response_model=PoolStatsOut, responses=error_responses(401, 403, 422),
    summary="Pool-wide figures",
    description=f"{_WINDOWS_DOC} `shares_per_second`: shares of any status over the last {SHARES_RATE_WINDOW}. "
                f"`efficiency`: accepted / all shares by count over the last {EFFICIENCY_WINDOW}, null without "
                "shares. `active_workers`: workers online now (the aggregator's liveness: each worker's deadline "
                "from its own share rate, or a disconnect); `active_miners`: miners with at least one. "
                "`blocks_found`: every block the pool found (any status). `round_effort`: accepted difficulty "
                "since the pool's latest block over that block's network difficulty (1.0 = 100 %; null before "
                "the first block). `luck`: over the last 64, 128 and 256 blocks, blocks found / blocks expected "
                "(null until a round is complete). `as_of`: m, the end of the windows. "
                "A pool without data gives zeros, not an error.",
)
async def pool_stats(request: Request, pool: PoolName = "main", _: Any = READ) -> PoolStatsOut:
    stats = await container(request).stats.pool_stats(pool)
    return PoolStatsOut(**asdict(stats))


@router.get(
    "/api/miners/{miner:any}/stats", response_model=MinerStatsOut, responses=error_responses(401, 403, 404, 422),
    summary="One miner's figures, per worker",
    description=f"{_WINDOWS_DOC} `efficiency` and each worker's accepted/rejected/stale/best_difficulty cover "
                f"the last {WORKER_TOTALS_WINDOW}; workers listed are those with rows in it. A worker is `online` "
                "until the deadline the aggregator derived from its own share rate (or at once after a disconnect "
                "with no connection left); a worker the aggregator has no status for is online while its last "
                f"share is at most {int(ONLINE_WITHIN.total_seconds())} s old (`last_share_at` includes the "
                "current minute). 404 when the pool has never seen the miner." + _MINER_KEY_DOC,
)
async def miner_stats(request: Request, miner: MinerId, pool: PoolName = "main",
                      principal: Principal = _MINER_READ) -> MinerStatsOut:
    _own_miner(principal, miner)
    try:
        stats = await container(request).stats.miner_stats(pool, miner)
    except UnknownMiner as exc:
        raise _not_found(exc) from exc
    return MinerStatsOut(**asdict(stats))


@router.get(
    "/api/miners/{miner:any}/history", response_model=list[HistoryRowOut], responses=error_responses(401, 403, 404, 422),
    summary="One miner's history, per worker, by minute, hour or day",
    description="One row per worker and step (`1m`, `1h` or `1d`) whose start `ts` is in [`from`, `to`), oldest "
                "first; `hashrate` = difficulty_accepted * HASHRATE_MULTIPLIER / the step's seconds. Without "
                f"`step` the range picks it: up to {int(MINUTE_ROWS_UP_TO.total_seconds() // 3600)} hours minutes, "
                f"up to {HOUR_ROWS_UP_TO.days} days hours, else days (hours and days are the aggregator's "
                "roll-ups, kept longer than the minutes). Default range: the last hour of complete minutes; "
                "without `to` the range ends at the start of the current step, so the newest row is complete. "
                "404 when the pool has never seen the miner." + _MINER_KEY_DOC,
)
async def miner_history(
    request: Request,
    miner: MinerId,
    pool: PoolName = "main",
    start: Annotated[str | None, Query(alias="from", description=f"Inclusive: {TIME_PARAM_DOC}")] = None,
    end: Annotated[str | None, Query(alias="to", description=f"Exclusive: {TIME_PARAM_DOC}")] = None,
    limit: Annotated[int, Query(ge=1, le=HISTORY_MAX_LIMIT)] = 10_000,
    step: Annotated[Step | None, Query(description="Row resolution; default by the range's length")] = None,
    principal: Principal = _MINER_READ,
) -> list[HistoryRowOut]:
    _own_miner(principal, miner)
    since, until = time_range(start, end, default_span=HISTORY_DEFAULT_SPAN,
                              default_end=minute_start(datetime.now(UTC)))
    resolution = history_step(since, until, step)
    if end is None and step_floor(until, resolution) > since:
        until = step_floor(until, resolution)
    try:
        rows = await container(request).stats.miner_history(pool, miner, start=since, end=until, limit=limit,
                                                            step=resolution)
    except UnknownMiner as exc:
        raise _not_found(exc) from exc
    return [HistoryRowOut(**asdict(r)) for r in rows]
