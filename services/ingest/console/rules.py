"""The rules page: `/rules`, every alert rule, editable in place with an admin key.

Rules are pool-wide (the API reads them with the read scope, never for a
miner's key), so a `miner:<name>` key gets the 403 page. The page carries
whether the viewer may write; the API refuses a write without admin anyway.
"""

from __future__ import annotations

from typing import Final

from fastapi import Depends, Request
from starlette.responses import Response

from services.ingest.console.access import Viewer, viewer
from services.ingest.console.render import render
from shared.http.auth import Scope
from shared.http.guard import guarded_router

router = guarded_router(include_in_schema=False)

# What the edit form offers; the API's 422 says why anything else is refused.
OPERATORS: Final = (">", ">=", "<", "<=", "==", "!=")
SEVERITIES: Final = ("info", "warning", "error", "critical")
WINDOWS: Final = ("", "1m", "5m", "15m", "1h", "24h")


@router.get("/rules")
async def rules_page(request: Request, who: Viewer = Depends(viewer(Scope.READ))) -> Response:
    can_write = who.can(Scope.ADMIN)
    page = {"can_write": can_write, "operators": list(OPERATORS), "severities": list(SEVERITIES),
            "windows": list(WINDOWS)}
    return render(request, "rules.html", who, {"can_write": can_write, "page": page})
