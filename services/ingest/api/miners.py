"""GET /api/miners: the console's miners list, paged on the server from the live hub's miner summaries."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Final, Literal

from fastapi import Depends, Query, Request
from pydantic import BaseModel

from services.ingest.api.common_params import MINER_PARAM_PATTERN, container, error_responses
from services.ingest.api.stats import PoolName, Window
from services.ingest.domain.live_records import MinerSummary
from services.ingest.domain.miner_list import SortField, page_miners
from shared.http.auth import Principal, Scope, require_scope
from shared.http.errors import ApiError
from shared.http.guard import guarded_router

router = guarded_router(tags=["console"])

MAX_LIMIT: Final = 500
MAX_OFFSET: Final = 1_000_000
SearchText = Annotated[str | None, Query(
    min_length=1, max_length=128, pattern=MINER_PARAM_PATTERN,
    description="Case-insensitive substring of the miner name (printable ASCII, as miner names are)")]


class MinerRowOut(BaseModel):
    miner: str
    hashrate: dict[Window, float]
    hashrate_lower: dict[Window, float | None]
    hashrate_upper: dict[Window, float | None]
    efficiency: dict[Window, float | None]
    workers_online: int
    workers_total: int
    last_share_at: datetime | None
    online: bool | None


class MinersPageOut(BaseModel):
    total: int
    offset: int
    limit: int
    miners: list[MinerRowOut]
    as_of: datetime | None


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _row(summary: MinerSummary) -> MinerRowOut:
    return MinerRowOut(
        miner=summary.miner,
        hashrate={w: v or 0.0 for w, v in summary.by_window(MinerSummary.HASHRATE).items()},
        hashrate_lower=summary.by_window(MinerSummary.LOWER),
        hashrate_upper=summary.by_window(MinerSummary.UPPER),
        efficiency=summary.by_window(MinerSummary.EFFICIENCY),
        workers_online=summary.workers_online,
        workers_total=summary.workers_total,
        last_share_at=_at(summary.last_share_at_ms),
        online=summary.online,
    )


_DESCRIPTION: Final = """\
The pool's miners, searched, sorted and paged on the server: what the console's miners list pages
through. Served from the miner records of the aggregator's snapshot stream that this process keeps
(docs/aggregator.md "Snapshot topic"), not from PostgreSQL: **as fresh as the snapshot stream**
(seconds), and complete once the process has read one full sweep (at most 5 minutes after it starts;
it reads the last 6 minutes of the stream at start). A miner the aggregator stopped publishing (no
worker in 24 h) leaves the list after `LIVE_MINER_STALE_S` (15 minutes).

Per miner: `hashrate` by window (1m..24h, H/s) with its 95% interval `hashrate_lower`/`hashrate_upper`,
`efficiency` by window (accepted / all shares, null without shares), `workers_online`, `workers_total`
(workers seen in the last 24 h), `last_share_at`, `online` (any worker online). `total` counts the
miners matching `q` on all pages; `as_of` is when the newest miner record was computed (null before
any arrived).

`sort`: `hashrate_1h` (default), `hashrate_24h`, `hashrate_5m`, `miner`, `workers_online`,
`last_share_at`; `order` `desc` (default) or `asc`; ties in miner name order, so pages neither repeat nor
skip a miner. A list of 20,000 miners is searched, sorted and paged in under 10 ms (measured 3 to 10 ms
on a busy 2-core machine).

Read scope; a `miner:<name>` key gets a list of only its own miner. 404 while `CONSOLE_ENABLED` is false."""


@router.get(
    "/api/miners", response_model=MinersPageOut, responses=error_responses(401, 403, 404, 422),
    summary="The miners list (search, sort, pages)", description=_DESCRIPTION,
)
async def miners_list(
    request: Request,
    pool: PoolName = "main",
    q: SearchText = None,
    sort: SortField = SortField.HASHRATE_1H,
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    principal: Principal = Depends(require_scope(Scope.READ, miner=True)),
) -> MinersPageOut:
    parts = container(request)
    if not parts.settings.console_enabled:
        raise ApiError(404, "the console is disabled on this server (CONSOLE_ENABLED=false)")
    fresh_after_ms = int((time.time() - parts.settings.live_miner_stale_s) * 1000)
    summaries = parts.live.miners(pool, fresh_after_ms=fresh_after_ms)
    if principal.miner is not None:
        summaries = [s for s in summaries if s.miner == principal.miner]
    page = page_miners(summaries, q=q, sort=sort, descending=order == "desc", limit=limit, offset=offset)
    newest = max((s.as_of_ms for s in summaries), default=None)
    return MinersPageOut(total=page.total, offset=offset, limit=limit, miners=[_row(s) for s in page.miners],
                         as_of=_at(newest))
