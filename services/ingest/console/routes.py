"""Mounting the console on the API app: its state, routers, body limits and page error handlers.

Every console page module adds its router to `console_routers()`; app.py
calls `install_console()` once, when the app is created (CONSOLE_ENABLED).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from services.ingest.config import IngestSettings
from services.ingest.console import alerts as alert_pages
from services.ingest.console import assets, pages
from services.ingest.console import channels as channel_pages
from services.ingest.console import dashboards as dashboard_pages
from services.ingest.console import miners as miner_pages
from services.ingest.console import rules as rule_pages
from services.ingest.console.access import PageError, SignInRequired, current_viewer
from services.ingest.console.console import load_console
from services.ingest.console.render import render
from services.ingest.console.sign_in import MAX_FORM_BYTES
from shared.http.guard import BodyLimits, include_guarded

# Page routes read at most a small form: nothing near the API's default body limit.
_BODY_LIMITS: Final = {("POST", "/sign-in"): MAX_FORM_BYTES, ("POST", "/sign-out"): MAX_FORM_BYTES}


def console_routers() -> tuple[APIRouter, ...]:
    return (
        assets.router,
        pages.router,
        alert_pages.router,
        rule_pages.router,
        channel_pages.router,
        miner_pages.router,
        dashboard_pages.router,
    )


async def _sign_in_required(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(exc.location, status_code=303)


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    try:
        who = await current_viewer(request)  # the answer principal_of remembered: no second lookup
    except PageError:
        who = None
    return render(request, "error.html", who, {"status": exc.status, "message": exc.message},
                  status=exc.status, headers=exc.headers)


def install_console(app: FastAPI, settings: IngestSettings) -> None:
    """Templates and static files read now (not at import), routes guarded like the API's."""
    app.state.console = load_console(settings)
    limits: BodyLimits = app.state.body_limits
    app.state.body_limits = replace(limits, by_route={**limits.by_route, **_BODY_LIMITS})
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(PageError, _page_error)
    for router in console_routers():
        include_guarded(app, router)
