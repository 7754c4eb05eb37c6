"""The pool page (`/`), signing in (`/sign-in`) and out (`/sign-out`)."""

from __future__ import annotations

from typing import Annotated, Final
from urllib.parse import quote

from fastapi import Depends, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from services.ingest.adapters.sessions import SessionStore
from services.ingest.console.access import PageError, Viewer, current_viewer, viewer
from services.ingest.console.console import Console
from services.ingest.console.render import render
from services.ingest.console.sign_in import read_form, same_origin
from services.ingest.domain.sessions import SIGN_IN_COOKIE, local_next, new_token, same_secret
from shared.events import NAME_PATTERN
from shared.hashrate import WINDOWS_MS
from shared.http.auth import SESSION_COOKIE, Scope, sign_in_principal
from shared.http.errors import ApiError
from shared.http.guard import guarded_router

router = guarded_router(include_in_schema=False)

WINDOWS: Final = ("1m", "5m", "15m", "1h", "24h")
SIGN_IN_FORM_TTL_S: Final = 3600
PoolName = Annotated[str, Query(min_length=1, max_length=64, pattern=NAME_PATTERN)]
NextPath = Annotated[str | None, Query(max_length=2048)]


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _sessions(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.container.sessions
    return store


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


@router.get("/")
async def pool_page(request: Request, pool: PoolName = "main",
                    who: Viewer = Depends(viewer(Scope.READ, miner=True))) -> Response:
    if who.miner is not None:
        # A miner's key has no pool-wide view: its home is its own miner's page.
        return _redirect(f"/miners/{quote(who.miner, safe='')}")
    return render(request, "pool.html", who, {"pool": pool, "windows": WINDOWS,
                                              "page": {"pool": pool, "windows": list(WINDOWS),
                                                       "window_ms": {w: WINDOWS_MS[w] for w in WINDOWS}}})


def _sign_in_form(request: Request, next_path: str, *, status: int = 200, error: str | None = None,
                  headers: dict[str, str] | None = None) -> Response:
    """The form with a fresh double-submit token, in a cookie and in a hidden field."""
    console = _console(request)
    token = new_token()
    response = render(request, "sign_in.html", None, {"next": next_path, "form_token": token, "error": error},
                      status=status, headers=headers)
    response.set_cookie(SIGN_IN_COOKIE, token, max_age=SIGN_IN_FORM_TTL_S, path="/sign-in",
                        httponly=True, samesite="strict", secure=console.cookie_secure)
    return response


@router.get("/sign-in")
async def sign_in_page(request: Request, next: NextPath = None) -> Response:  # noqa: A002 (the URL's name)
    target = local_next(next)
    if await current_viewer(request) is not None:
        return _redirect(target)
    return _sign_in_form(request, target)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await read_form(request)
    target = local_next(form.get("next"))
    if not same_origin(request):
        raise PageError(403, "this form may only be sent from this site")
    if not same_secret(form.get("csrf_token"), request.cookies.get(SIGN_IN_COOKIE, "")):
        return _sign_in_form(request, target, status=403,
                             error="The sign-in form expired or came from elsewhere; please try again.")
    try:
        principal = await sign_in_principal(request, form.get("api_key") or "")
    except ApiError as exc:
        return _sign_in_form(request, target, status=exc.status, error=exc.error, headers=exc.headers)
    token, _ = await _sessions(request).create(principal)
    console = _console(request)
    response = _redirect(target)
    response.set_cookie(SESSION_COOKIE, token, max_age=console.session_ttl_s, path="/",
                        httponly=True, samesite="strict", secure=console.cookie_secure)
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """Ends the session when the form carries its CSRF token; the cookie goes either way.

    The session is read here, not through `principal_of`: that would ask a
    cookie-authenticated POST for the X-CSRF-Token header, which a form
    cannot send; the token travels in the form's hidden field instead."""
    form = await read_form(request)
    token = request.cookies.get(SESSION_COOKIE)
    sessions = _sessions(request)
    session = await sessions.resolve(token) if token is not None else None
    if session is not None and token is not None:
        if not same_secret(form.get("csrf_token"), session.csrf_token):
            raise PageError(403, "sign out from the console's own button")
        await sessions.end(token)
    console = _console(request)
    response = _redirect("/sign-in")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=console.cookie_secure)
    return response
