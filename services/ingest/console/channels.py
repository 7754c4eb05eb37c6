"""The channels page: `/channels`, where notifications go, editable and testable with an admin key.

A `miner:<name>` key sees (and manages) its own miner's channels only: the
API narrows the list and refuses the others, so the page needs no check of
its own beyond letting such a key in.
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

SEVERITIES: Final = ("info", "warning", "error", "critical")


@router.get("/channels")
async def channels_page(request: Request, who: Viewer = Depends(viewer(Scope.READ, miner=True))) -> Response:
    # The channels API lets a miner's key write its own channels, as an admin key writes any.
    can_write = who.miner is not None or who.can(Scope.ADMIN)
    page = {"can_write": can_write, "severities": list(SEVERITIES)}
    return render(request, "channels.html", who, {"can_write": can_write, "page": page})
