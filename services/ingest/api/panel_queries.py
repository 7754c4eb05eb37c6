"""Running one dashboard panel's query: `GET /api/dashboards/{id}/panels/{panelId}/data` (dashboards.py).

A panel reads through the very route functions of the endpoints it names, so
a stat panel shows exactly what the API answers. It reads as its dashboard:
with the `read` scope, on the one query stored in the panel and checked by
`parse_panel` (the allow-list, each parameter bounded like the route's own).
That is why a public dashboard can be served without a key and still opens
nothing of the API but what its owner (an admin) put on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

import orjson
from fastapi import Request, Response
from pydantic import BaseModel

from services.ingest.api import metrics, pool_history, query, stats
from services.ingest.domain.dashboard_panels import RANGE_S, EndpointQuery, Panel, PromQuery, TimeRange
from services.ingest.domain.dashboards import Dashboard
from services.ingest.domain.panel_data import (
    PanelData,
    from_endpoint,
    from_prometheus_instant,
    from_prometheus_range,
)
from services.ingest.domain.stats import Step
from shared.access import Principal
from shared.http.auth import Scope

ROW_LIMIT: Final = 10_000
# A range query's resolution: about this many points across the chart, never finer than Prometheus' scrape.
PROM_POINTS: Final = 240
PROM_MIN_STEP_S: Final = 15

Reader = Callable[[Request, EndpointQuery, str, Principal], Awaitable[Any]]


def _step(q: EndpointQuery) -> Step | None:
    return cast(Step | None, q.params.get("step"))


def _pool(q: EndpointQuery) -> str:
    return q.params.get("pool", "main")


async def _pool_stats(request: Request, q: EndpointQuery, since: str, who: Principal) -> Any:
    return await stats.pool_stats(request, pool=_pool(q), _=who)


async def _pool_history(request: Request, q: EndpointQuery, since: str, who: Principal) -> Any:
    return await pool_history.pool_history(request, pool=_pool(q), start=since, end=None, limit=ROW_LIMIT,
                                           step=_step(q), _=who)


async def _miner_stats(request: Request, q: EndpointQuery, since: str, who: Principal) -> Any:
    return await stats.miner_stats(request, q.path_param("miner"), pool=_pool(q), principal=who)


async def _miner_history(request: Request, q: EndpointQuery, since: str, who: Principal) -> Any:
    return await stats.miner_history(request, q.path_param("miner"), pool=_pool(q), start=since, end=None,
                                     limit=ROW_LIMIT, step=_step(q), principal=who)


async def _metrics(request: Request, q: EndpointQuery, since: str, who: Principal) -> Any:
    return await metrics.get_metrics(request, name=q.params.get("name"), start=since, end=None,
                                     labels=q.params.get("labels"), limit=metrics.MAX_LIMIT, _=who)


async def _performance(request: Request, q: EndpointQuery, since: str, who: Principal) -> Any:
    return await metrics.get_performance(request, host=q.params.get("host"), service=q.params.get("service"),
                                         start=since, end=None, limit=metrics.MAX_LIMIT, _=who)


async def _miner_rows(request: Request, q: EndpointQuery, since: str, who: Principal) -> Any:
    return await metrics.get_miner(request, q.path_param("minerId"), pool=q.params.get("pool"),
                                   worker=q.params.get("worker"), start=since, end=None,
                                   limit=metrics.MAX_LIMIT, principal=who)


READERS: Final[Mapping[str, Reader]] = {
    "/api/pool/stats": _pool_stats,
    "/api/pool/history": _pool_history,
    "/api/miners/{miner}/stats": _miner_stats,
    "/api/miners/{miner}/history": _miner_history,
    "/api/metrics": _metrics,
    "/api/metrics/performance": _performance,
    "/api/metrics/miner/{minerId}": _miner_rows,
}


def _as_json(answer: Any) -> Any:
    """A route's answer (a model, a list of models, or Prometheus' bytes) as plain JSON values."""
    if isinstance(answer, Response):
        return orjson.loads(bytes(answer.body))
    if isinstance(answer, list):
        return [_as_json(item) for item in answer]
    if isinstance(answer, BaseModel):
        return answer.model_dump(mode="json")
    return answer


def panel_range(panel: Panel, chosen: TimeRange) -> TimeRange:
    """The range a panel shows: its own fixed one (PromQL `range`), else the dashboard's selector."""
    if isinstance(panel.query, PromQuery) and panel.query.range is not None:
        return panel.query.range
    return chosen


async def _prometheus(request: Request, panel: Panel, q: PromQuery, since: datetime, until: datetime,
                      who: Principal) -> PanelData:
    if panel.type == "timeseries":
        step_s = max(PROM_MIN_STEP_S, int((until - since).total_seconds()) // PROM_POINTS)
        answer = await query.query_range(request, query=q.promql, start=f"{since.timestamp():.3f}",
                                         end=f"{until.timestamp():.3f}", step=str(step_s), timeout=None, _=who)
        return from_prometheus_range(_as_json(answer))
    answer = await query.query(request, query=q.promql, time=f"{until.timestamp():.3f}", timeout=None, _=who)
    return from_prometheus_instant(panel, q.columns, _as_json(answer))


async def read_panel(request: Request, dashboard: Dashboard, panel: Panel,
                     shown: TimeRange) -> tuple[PanelData, datetime, datetime]:
    """The panel's data over the range `shown` ends now; an `ApiError` of the route read (404 for a miner
    the pool never saw, 503 without Prometheus, 422 for a label filter that is no JSON) passes through."""
    until = datetime.now(UTC)
    since = until - timedelta(seconds=RANGE_S[shown])
    # Who the routes see: the dashboard itself, reading.
    who = Principal(key_id=dashboard.owner, name=f"dashboard {dashboard.id}", scopes=frozenset({Scope.READ}))
    if isinstance(panel.query, PromQuery):
        return await _prometheus(request, panel, panel.query, since, until, who), since, until
    answer = await READERS[panel.query.endpoint](request, panel.query, since.isoformat(), who)
    return from_endpoint(panel, panel.query, _as_json(answer)), since, until
