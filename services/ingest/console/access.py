"""Who is looking at a console page, and may they: the page routes' dependency (docs/console.md).

Pages answer a person, not a program: where the API says 401 a page sends
the browser to the sign-in form (303, remembering where it was going), and
where the API says 403 it shows a page saying so. The principal comes from
`shared.http.auth.principal_of`, so a page sees exactly what the API would
(session cookie or Bearer key, same limits, same counters).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlencode

from fastapi import Request

from shared.http.auth import Principal, Scope, principal_of, session_of
from shared.http.errors import ApiError

SIGN_IN_PATH: Final = "/sign-in"


class SignInRequired(Exception):
    """No session: the browser goes to the sign-in form, then back to `next_path`."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path

    @property
    def location(self) -> str:
        return f"{SIGN_IN_PATH}?{urlencode({'next': self.next_path})}"


class PageError(Exception):
    """A page that cannot be shown to this viewer: rendered as the error page with this status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in key, as pages see it. `csrf_token` is "" for a Bearer request (no session)."""

    principal: Principal
    csrf_token: str

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def miner(self) -> str | None:
        return self.principal.miner

    def can(self, scope: Scope) -> bool:
        return scope in self.principal.scopes

    @property
    def sections(self) -> list[tuple[str, str]]:
        """The navigation this key can use: a miner's key reaches its own miner, alerts and channels."""
        if self.miner is not None:
            return [(f"/miners/{quote(self.miner, safe='')}", "My miner"), ("/alerts", "Alerts"),
                    ("/channels", "Channels")]
        return [("/", "Pool"), ("/miners", "Miners"), ("/alerts", "Alerts"), ("/rules", "Rules"),
                ("/channels", "Channels"), ("/dashboards", "Dashboards")]

    def ensure_miner(self, miner: str) -> None:
        """A page of one miner: a key limited to another miner may not see it (403 page)."""
        if self.miner is not None and self.miner != miner:
            raise PageError(403, f"this key may see miner {self.miner} only")


def here(request: Request) -> str:
    """This page's path and query: where to come back to after signing in."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def current_viewer(request: Request) -> Viewer | None:
    """The viewer, or None without a session or key; an over-limit or bad key is a `PageError`."""
    try:
        principal = await principal_of(request)
    except ApiError as exc:
        raise PageError(exc.status, exc.error, exc.headers) from None
    if principal is None:
        return None
    session = session_of(request)
    return Viewer(principal, session.csrf_token if session is not None else "")


def viewer(scope: Scope = Scope.READ, *, miner: bool = False) -> Callable[[Request], Awaitable[Viewer]]:
    """A page dependency: a viewer whose key holds `scope` (with `miner`, a miner's key too).

    Deliberately not `require_scope`: the guard would answer its 401 in JSON."""

    async def dependency(request: Request) -> Viewer:
        who = await current_viewer(request)
        if who is None:
            raise SignInRequired(here(request))
        allowed = miner if who.miner is not None else who.can(scope)
        if not allowed:
            request.app.state.gate.observer.forbidden(scope)
            raise PageError(403, f"this API key lacks the '{scope}' scope needed for this page")
        return who

    return dependency
