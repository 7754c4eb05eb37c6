"""Saved dashboards. Who may see or change one: domain/dashboards.py (summarised in each route's description)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.ingest.adapters.dashboards import check_config_size
from services.ingest.api.common_params import Text, container, error_responses
from services.ingest.api.panel_queries import panel_range, read_panel
from services.ingest.domain.dashboard_panels import (
    DEFAULT_RANGE,
    PANEL_ID_PATTERN,
    PanelInvalid,
    TimeRange,
    find_panel,
)
from services.ingest.domain.dashboards import (
    Access,
    ConfigNotStorable,
    ConfigTooLarge,
    Dashboard,
    Viewer,
    check_panels,
    read_access,
    write_access,
)
from services.ingest.domain.panel_data import Scalar
from shared.http.auth import OPTIONAL_KEY_SECURITY, Principal, Scope, optional_principal, require_scope
from shared.http.errors import ApiError
from shared.http.guard import guarded_router

router = guarded_router(tags=["dashboards"])

_ADMIN = Depends(require_scope(Scope.ADMIN))
_MAYBE = Depends(optional_principal)
MAX_NAME_CHARS: Final = 200
MAX_DESCRIPTION_CHARS: Final = 2000
# Any string: one that is not a uuid names no dashboard (404), like an unknown uuid.
DashboardId = Annotated[str, Path(alias="dashboardId", description="The dashboard's id (a uuid)")]
Name = Annotated[Text, Field(min_length=1, max_length=MAX_NAME_CHARS)]
Description = Annotated[Text, Field(max_length=MAX_DESCRIPTION_CHARS)]
_CONFIG_DOC: Final = (
    "A JSON object, up to MAX_DASHBOARD_CONFIG_BYTES as compact JSON. Its `panels`, when present, are what the "
    "console draws (docs/console.md \"Dashboards\"), checked on every save (422 naming the field, e.g. "
    "`body.config.panels[2].query.endpoint`): a list of up to 50 "
    "`{\"id\", \"title\", \"type\": \"timeseries\"|\"stat\"|\"table\", \"query\", \"unit\"?, \"width\"?: 1..12}`; "
    "`id` is 1-64 letters, digits, '_' or '-', unique in the dashboard; `unit` is hashrate, percent, count or number. "
    "A `query` is EITHER `{\"endpoint\", \"params\"?, \"field\"?, \"series_by\"?, \"columns\"?}`, the endpoint one of "
    "`/api/pool/stats`, `/api/pool/history`, `/api/miners/{miner}/stats`, `/api/miners/{miner}/history`, "
    "`/api/metrics`, `/api/metrics/performance`, `/api/metrics/miner/{minerId}` (params: its path parameter and "
    "its filters, as strings; `field`: a dot path to the number, in the answer or in each row; `series_by`: a row "
    "field giving one line each; `columns`: a table's field paths), OR `{\"promql\", \"range\"?: 1h|6h|24h|7d, "
    "\"columns\"?}`. Other keys of the config are kept as they are."
)
Config = Annotated[dict[str, Any], Field(description=_CONFIG_DOC)]
PanelId = Annotated[str, Path(alias="panelId", min_length=1, max_length=64, pattern=PANEL_ID_PATTERN,
                              description="The panel's `id` in the dashboard's config")]

_READ_RULES: Final = (
    "A public dashboard is readable by anyone, with or without an API key (whatever the key's scopes). "
    "A private one only by its owner (the key that created it), with the `read` scope; "
    "for anyone else it does not exist (404)."
)
_WRITE_RULES: Final = (
    "Admin scope, and only the owner: another key gets 404 for a private dashboard, 403 for a public one."
)


class DashboardIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    name: Name
    description: Description = ""
    config: Config = Field(default_factory=dict)
    is_public: bool = False


class DashboardPatch(BaseModel):
    """Only the fields given change; null is not a value any of them takes."""

    model_config = ConfigDict(strict=True, extra="forbid")

    name: Name = None  # type: ignore[assignment]
    description: Description = None  # type: ignore[assignment]
    config: Config = None  # type: ignore[assignment]
    is_public: bool = None  # type: ignore[assignment]


class DashboardOut(BaseModel):
    id: str
    name: str
    description: str
    config: dict[str, Any]
    is_public: bool
    is_owner: bool = Field(description="Whether the calling key owns it")
    created_at: datetime
    updated_at: datetime


class DashboardsOut(BaseModel):
    dashboards: list[DashboardOut]


class SeriesOut(BaseModel):
    name: str
    points: list[tuple[float, float | None]] = Field(description="[unix seconds, value or null], oldest first")


class PanelDataOut(BaseModel):
    panel: str
    type: str
    range: TimeRange
    start: datetime = Field(description="The range's start (inclusive)")
    end: datetime = Field(description="The range's end: now")
    value: Scalar = Field(None, description="stat: the number")
    series: list[SeriesOut] = Field(default_factory=list, description="timeseries: one per line")
    columns: list[str] = Field(default_factory=list, description="table: the column names")
    rows: list[list[Scalar]] = Field(default_factory=list, description="table: the rows")
    truncated: bool = Field(False, description="More lines, points or rows than are shown")


def _out(dashboard: Dashboard, principal: Principal | None) -> DashboardOut:
    return DashboardOut(
        id=dashboard.id, name=dashboard.name, description=dashboard.description, config=dashboard.config,
        is_public=dashboard.is_public, is_owner=principal is not None and str(principal.key_id) == dashboard.owner,
        created_at=dashboard.created_at, updated_at=dashboard.updated_at,
    )


def _viewer(principal: Principal | None) -> Viewer:
    if principal is None:
        return Viewer(None, can_read=False)
    return Viewer(str(principal.key_id), can_read=Scope.READ in principal.scopes)


def _not_found(dashboard_id: str) -> ApiError:
    return ApiError(404, f"no dashboard {dashboard_id!r}", [{"field": "path.dashboardId", "message": "not found"}])


def _check_config(request: Request, config: dict[str, Any]) -> None:
    try:
        check_config_size(config, container(request).settings.max_dashboard_config_bytes)
    except ConfigTooLarge as exc:
        raise ApiError(413, str(exc), [{"field": "body.config", "message":
                       f"{exc.size_bytes} bytes as compact JSON; at most {exc.max_bytes}"}]) from exc
    except ConfigNotStorable as exc:
        raise ApiError(422, str(exc), [{"field": "body.config", "message": exc.reason}]) from exc
    try:
        check_panels(config)
    except PanelInvalid as exc:
        raise ApiError(422, f"the console cannot draw this config: {exc}",
                       [{"field": f"body.config.{exc.field}", "message": exc.reason}]) from exc


@router.post("/api/dashboards", status_code=201, response_model=DashboardOut,
             responses=error_responses(400, 401, 403, 413, 422), summary="Create a dashboard",
             description="Admin scope; the calling key becomes the owner. A config over the size limit gets 413.")
async def create_dashboard(body: DashboardIn, request: Request, principal: Principal = _ADMIN) -> DashboardOut:
    _check_config(request, body.config)
    dashboard = await container(request).dashboards.create(
        name=body.name, description=body.description, config=body.config, is_public=body.is_public,
        owner=str(principal.key_id))
    return _out(dashboard, principal)


@router.get("/api/dashboards", response_model=DashboardsOut, responses=error_responses(401, 422),
            summary="List dashboards", openapi_extra={"security": OPTIONAL_KEY_SECURITY},
            description="Every public dashboard, plus the caller's own when its key holds `read`; newest first. "
                        "No key needed (then: public ones only).")
async def list_dashboards(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    principal: Principal | None = _MAYBE,
) -> DashboardsOut:
    viewer = _viewer(principal)
    owner = viewer.key_id if viewer.can_read else None
    found = await container(request).dashboards.visible(owner, limit=limit, offset=offset)
    return DashboardsOut(dashboards=[_out(d, principal) for d in found])


@router.get("/api/dashboards/{dashboardId}", response_model=DashboardOut, responses=error_responses(401, 403, 404),
            summary="Get a dashboard", description=_READ_RULES, openapi_extra={"security": OPTIONAL_KEY_SECURITY})
async def get_dashboard(dashboard_id: DashboardId, request: Request,
                        principal: Principal | None = _MAYBE) -> DashboardOut:
    return _out(await _readable(request, dashboard_id, principal), principal)


async def _readable(request: Request, dashboard_id: str, principal: Principal | None) -> Dashboard:
    dashboard = await container(request).dashboards.get(dashboard_id)
    access = read_access(dashboard, _viewer(principal)) if dashboard is not None else Access.NOT_FOUND
    if access is Access.NOT_FOUND or dashboard is None:
        raise _not_found(dashboard_id)
    if access is Access.FORBIDDEN:
        raise ApiError(403, f"this API key lacks the '{Scope.READ}' scope")
    return dashboard


@router.get(
    "/api/dashboards/{dashboardId}/panels/{panelId}/data", response_model=PanelDataOut,
    responses=error_responses(401, 403, 404, 422, 503), summary="One panel's data, as the console draws it",
    openapi_extra={"security": OPTIONAL_KEY_SECURITY},
    description=f"{_READ_RULES} The panel's own query (and nothing else) is run over `range` ending now: a "
                "public dashboard's panels are readable without a key, which opens no other route. Answers only "
                "the panel's fields: `value` (stat), `series` (timeseries), `columns` and `rows` (table). 404 for "
                "a panel id the config does not have; 422 (`path.panelId`) for a stored panel the console cannot "
                "draw; the read route's own 404/422/503 (unknown miner, no Prometheus) pass through.",
)
async def panel_data(dashboard_id: DashboardId, panel_id: PanelId, request: Request,
                     range: Annotated[TimeRange, Query(description="How far back from now")] = DEFAULT_RANGE,  # noqa: A002
                     principal: Principal | None = _MAYBE) -> PanelDataOut:
    dashboard = await _readable(request, dashboard_id, principal)
    try:
        panel = find_panel(dashboard.config, panel_id)
    except PanelInvalid as exc:
        raise ApiError(422, f"this panel cannot be drawn: {exc}",
                       [{"field": "path.panelId", "message": f"config.{exc.field}: {exc.reason}"}]) from exc
    if panel is None:
        raise ApiError(404, f"no panel {panel_id!r} on this dashboard",
                       [{"field": "path.panelId", "message": "not found"}])
    shown = panel_range(panel, range)
    data, start, end = await read_panel(request, dashboard, panel, shown)
    return PanelDataOut(panel=panel.id, type=panel.type, range=shown, start=start, end=end, value=data.value,
                        series=[SeriesOut(name=n, points=p) for n, p in data.series], columns=data.columns,
                        rows=data.rows, truncated=data.truncated)


async def _owned(request: Request, dashboard_id: str, principal: Principal) -> None:
    """Raise 404/403 unless the caller owns the dashboard."""
    dashboard = await container(request).dashboards.get(dashboard_id)
    if dashboard is None:
        raise _not_found(dashboard_id)
    access = write_access(dashboard, str(principal.key_id))
    if access is Access.NOT_FOUND:
        raise _not_found(dashboard_id)
    if access is Access.FORBIDDEN:
        raise ApiError(403, "only the dashboard's owner may change or delete it")


async def _update(request: Request, dashboard_id: str, principal: Principal, changes: dict[str, Any]) -> DashboardOut:
    if "config" in changes:
        _check_config(request, changes["config"])
    await _owned(request, dashboard_id, principal)
    # The store re-checks the owner in the UPDATE itself, so a concurrent delete just gives 404.
    updated = await container(request).dashboards.update(dashboard_id, str(principal.key_id), changes)
    if updated is None:
        raise _not_found(dashboard_id)
    return _out(updated, principal)


@router.put("/api/dashboards/{dashboardId}", response_model=DashboardOut,
            responses=error_responses(400, 401, 403, 404, 413, 422), summary="Replace a dashboard",
            description=f"Fields left out take their defaults. {_WRITE_RULES}")
async def replace_dashboard(dashboard_id: DashboardId, body: DashboardIn, request: Request,
                            principal: Principal = _ADMIN) -> DashboardOut:
    return await _update(request, dashboard_id, principal, body.model_dump())


@router.patch("/api/dashboards/{dashboardId}", response_model=DashboardOut,
              responses=error_responses(400, 401, 403, 404, 413, 422), summary="Change some fields of a dashboard",
              description=f"Only the fields given change. {_WRITE_RULES}")
async def patch_dashboard(dashboard_id: DashboardId, body: DashboardPatch, request: Request,
                          principal: Principal = _ADMIN) -> DashboardOut:
    return await _update(request, dashboard_id, principal, body.model_dump(exclude_unset=True))


@router.delete("/api/dashboards/{dashboardId}", status_code=204, responses=error_responses(401, 403, 404),
               summary="Delete a dashboard", description=_WRITE_RULES, response_class=Response)
async def delete_dashboard(dashboard_id: DashboardId, request: Request, principal: Principal = _ADMIN) -> Response:
    await _owned(request, dashboard_id, principal)
    if not await container(request).dashboards.delete(dashboard_id, str(principal.key_id)):
        raise _not_found(dashboard_id)
    return Response(status_code=204)
