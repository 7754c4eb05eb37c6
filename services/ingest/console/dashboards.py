"""The Dashboards section: `/dashboards` (the list) and `/dashboards/{id}` (one dashboard's panels).

A public dashboard opens without signing in, at its shareable URL; its panels
read through `GET /api/dashboards/{id}/panels/{panelId}/data`, which needs no
key for a public dashboard and runs that panel's query alone. A private one
is the owner's: without a session the browser is sent to sign in (as it is
for an id that does not exist, so the answer tells nothing), and to any other
key it is the 404 page, never 403, so ids cannot be probed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from starlette.responses import Response

from services.ingest.api.common_params import container
from services.ingest.console.access import PageError, SignInRequired, Viewer, current_viewer, here
from services.ingest.console.render import render
from services.ingest.domain.dashboard_panels import (
    DEFAULT_RANGE,
    MAX_PANELS,
    MAX_TITLE_CHARS,
    RANGE_S,
    Panel,
    PanelInvalid,
    TimeRange,
    parse_panel,
)
from services.ingest.domain.dashboards import Access, Dashboard, read_access
from services.ingest.domain.dashboards import Viewer as DashboardViewer
from shared.http.auth import Scope
from shared.http.guard import guarded_router

router = guarded_router(include_in_schema=False)

# Not validated as a uuid here: the store answers None for anything else, which is the same 404 as an unknown id.
DashboardId = Annotated[str, Path(min_length=1, max_length=64)]


async def signed_in(request: Request) -> Viewer:
    """Anyone signed in sees the list (public dashboards need no scope); without a session, sign in first."""
    who = await current_viewer(request)
    if who is None:
        raise SignInRequired(here(request))
    return who


@router.get("/dashboards")
async def dashboards_page(request: Request, who: Viewer = Depends(signed_in)) -> Response:
    return render(request, "dashboards.html", who, {"page": {"can_read": who.can(Scope.READ)}})


def _panel_view(index: int, value: Any) -> dict[str, Any]:
    """What the page needs of one panel; a stored panel the console cannot draw says why instead."""
    try:
        panel: Panel = parse_panel(value, f"panels[{index}]")
    except PanelInvalid as exc:
        title = value.get("title") if isinstance(value, dict) else None
        return {"id": None, "title": title[:MAX_TITLE_CHARS] if isinstance(title, str) else f"Panel {index + 1}",
                "type": "invalid", "width": 12, "unit": None, "problem": str(exc)}
    return {"id": panel.id, "title": panel.title, "type": panel.type, "width": panel.width, "unit": panel.unit,
            "problem": None}


def _panels(config: dict[str, Any]) -> list[dict[str, Any]]:
    panels = config.get("panels")
    if not isinstance(panels, list):
        return []  # a config from before panels had a model: "no panels"
    return [_panel_view(i, p) for i, p in enumerate(panels[:MAX_PANELS])]


def _access(dashboard: Dashboard | None, who: Viewer | None) -> Access:
    """The API's rule (`read_access`) for this viewer; no viewer is a caller without a key."""
    if dashboard is None:
        return Access.NOT_FOUND
    if who is None:
        return read_access(dashboard, DashboardViewer(None, can_read=False))
    return read_access(dashboard, DashboardViewer(who.principal.key_id, can_read=who.can(Scope.READ)))


@router.get("/dashboards/{dashboard_id}")
async def dashboard_page(request: Request, dashboard_id: DashboardId,
                         range: Annotated[TimeRange, Query()] = DEFAULT_RANGE) -> Response:  # noqa: A002
    who = await current_viewer(request)
    dashboard = await container(request).dashboards.get(dashboard_id)
    access = _access(dashboard, who)
    if access is Access.NOT_FOUND or dashboard is None:
        if who is None:
            # Signing in may show it (a private dashboard's owner); unknown ids go the same way.
            raise SignInRequired(here(request))
        raise PageError(404, "There is no such dashboard, or it is not yours to see.")
    if access is Access.FORBIDDEN:
        raise PageError(403, f"this API key lacks the '{Scope.READ}' scope needed for this page")
    panels = _panels(dashboard.config)
    page = {"id": dashboard.id, "range": range, "ranges": list(RANGE_S), "panels": panels}
    return render(request, "dashboard.html", who, {"dashboard": dashboard, "panels": panels, "range": range,
                                                   "ranges": list(RANGE_S), "page": page})
