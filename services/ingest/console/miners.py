"""The Miners section: `/miners` (the list, paged on the server) and `/miners/{miner}` (one miner).

Both pages are shells: their figures come from the JSON API in the browser
(`/api/miners`, `/api/miners/{miner}/stats` and `/history`, then `/live`).
Query parameters are validated here exactly as the API validates them, so a
shared link that the API would refuse is refused before a page is built.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal
from urllib.parse import quote, urlencode

from fastapi import Depends, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from services.ingest.adapters.stats import UnknownMiner
from services.ingest.api.common_params import container
from services.ingest.api.miners import MAX_LIMIT, MAX_OFFSET, SearchText
from services.ingest.api.stats import MinerId, PoolName
from services.ingest.console.access import PageError, Viewer, viewer
from services.ingest.console.render import render
from services.ingest.domain.miner_list import SortField
from shared.http.auth import Scope
from shared.http.guard import guarded_router

router = guarded_router(include_in_schema=False)

WINDOWS: Final = ("1m", "5m", "15m", "1h", "24h")
PAGE_SIZES: Final = (25, 50, 100)
DEFAULT_PAGE_SIZE: Final = 50
# The list's sortable columns, in the order the table shows them: (sort key, header).
SORTABLE_COLUMNS: Final = (
    (SortField.MINER, "Miner"),
    (SortField.HASHRATE_1H, "Hashrate 1h"),
    (SortField.HASHRATE_24H, "Hashrate 24h"),
    (SortField.WORKERS_ONLINE, "Workers online / total"),
    (SortField.LAST_SHARE_AT, "Last share"),
)
# Names read best A→Z, figures biggest first: the first click on a header sorts this way.
FIRST_ORDER: Final = {SortField.MINER: "asc"}


def _miner_path(miner: str) -> str:
    return f"/miners/{quote(miner, safe='')}"


@router.get("/miners")
async def miners_page(
    request: Request,
    pool: PoolName = "main",
    q: SearchText = None,
    sort: SortField = SortField.HASHRATE_1H,
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    who: Viewer = Depends(viewer(Scope.READ, miner=True)),
) -> Response:
    if who.miner is not None:
        # A miner's key has one miner to look at: its list would be a single row.
        return RedirectResponse(_miner_path(who.miner), status_code=303)
    view = {"pool": pool, "q": q or "", "sort": sort.value, "order": order, "limit": limit, "offset": offset}
    columns = [{"sort": field.value, "label": label, "first": FIRST_ORDER.get(field, "desc")}
               for field, label in SORTABLE_COLUMNS]
    return render(request, "miners.html", who, {
        "pool": pool, "view": view, "columns": columns, "page_sizes": PAGE_SIZES,
        "page": {**view, "page_sizes": list(PAGE_SIZES), "max_offset": MAX_OFFSET},
    })


# `:any` (api/common_params.py): a miner name may hold '/', which the router sees decoded.
@router.get("/miners/{miner:any}")
async def miner_page(request: Request, miner: MinerId, pool: PoolName = "main",
                     who: Viewer = Depends(viewer(Scope.READ, miner=True))) -> Response:
    # Before any lookup, as the API does: another miner's key learns nothing, not even whether it exists.
    who.ensure_miner(miner)
    try:
        # The API's own reader and its own answer for "never seen": a page and its JSON agree on 404.
        await container(request).stats.miner_stats(pool, miner)
    except UnknownMiner:
        raise PageError(404, f"pool {pool} has never seen miner {miner}") from None
    return render(request, "miner.html", who, {
        "pool": pool, "miner": miner, "windows": WINDOWS,
        "list_href": "/miners?" + urlencode({"pool": pool}),
        "page": {"pool": pool, "miner": miner, "windows": list(WINDOWS)},
    })
