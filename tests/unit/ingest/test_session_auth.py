"""The console's session cookie in `shared.http.auth`: when it stands in for the key, and CSRF on writes.

A small app in memory (httpx's ASGI transport) with hand-written keys, limiters and sessions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from prometheus_client import CollectorRegistry

from services.ingest.telemetry import IngestTelemetry
from shared.access import KeyRefused, Principal, Scope
from shared.http.auth import Gate, require_scope
from shared.http.errors import install_error_handlers

pytestmark = pytest.mark.unit

READER = Principal("k-read", "wall screen", frozenset({Scope.READ}))
GREEDY = Principal("k-greedy", "poller", frozenset({Scope.READ}))
CSRF = "csrf-of-the-session"


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf_token: str


@dataclass
class Fakes:
    """Authenticator, both limiters and the session resolver, as `Gate` wants them."""

    blocked: bool = False
    failures: int = 0
    sessions: dict[str, Session] = field(default_factory=lambda: {
        "good-cookie": Session(READER, CSRF), "greedy-cookie": Session(GREEDY, CSRF)})

    async def authenticate(self, token: str) -> Principal | KeyRefused:
        return READER if token == READER.key_id else KeyRefused.UNKNOWN

    def retry_after_s(self, principal: Principal) -> float:
        return 5.0 if principal is GREEDY else 0.0

    def blocked_for_s(self, address: str) -> float:
        return 30.0 if self.blocked else 0.0

    def failed(self, address: str) -> None:
        self.failures += 1

    async def resolve(self, token: str) -> Session | None:
        return self.sessions.get(token)


def _app(fakes: Fakes, *, with_sessions: bool) -> FastAPI:
    router = APIRouter()
    read = [Depends(require_scope(Scope.READ))]

    @router.get("/pool", dependencies=read)
    async def pool() -> dict[str, str]:
        return {"ok": "read"}

    @router.post("/pool", dependencies=read)
    async def write() -> dict[str, str]:
        return {"ok": "written"}

    app = FastAPI()
    app.include_router(router)
    install_error_handlers(app)
    app.state.gate = Gate(authenticator=fakes, key_limiter=fakes, failure_limiter=fakes,
                          observer=IngestTelemetry(CollectorRegistry()),
                          sessions=fakes if with_sessions else None)
    return app


@pytest.fixture
async def served() -> AsyncIterator[tuple[httpx.AsyncClient, Fakes]]:
    fakes = Fakes()
    transport = httpx.ASGITransport(app=_app(fakes, with_sessions=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, fakes


async def test_a_live_sessions_cookie_stands_in_for_the_key(served: tuple[httpx.AsyncClient, Fakes]) -> None:
    client, _ = served
    client.cookies.set("chimera_session", "good-cookie")
    assert (await client.get("/pool")).json() == {"ok": "read"}


async def test_the_header_wins_over_the_cookie(served: tuple[httpx.AsyncClient, Fakes]) -> None:
    client, fakes = served
    client.cookies.set("chimera_session", "good-cookie")
    answer = await client.get("/pool", headers={"Authorization": "Bearer not-a-key"})
    assert answer.status_code == 401 and fakes.failures == 1


async def test_a_cookie_without_a_session_is_no_credential_and_not_charged(
        served: tuple[httpx.AsyncClient, Fakes]) -> None:
    client, fakes = served
    client.cookies.set("chimera_session", "signed-out-elsewhere")
    answer = await client.get("/pool")
    assert answer.status_code == 401 and answer.json()["error"] == "an API key is required"
    assert fakes.failures == 0


async def test_a_cookie_write_must_echo_the_csrf_token(served: tuple[httpx.AsyncClient, Fakes]) -> None:
    client, _ = served
    client.cookies.set("chimera_session", "good-cookie")
    for headers in ({}, {"X-CSRF-Token": "guess"}, {"X-CSRF-Token": CSRF + "x"}, {"X-CSRF-Token": ""}):
        refused = await client.post("/pool", headers=headers)
        assert refused.status_code == 403
        assert refused.json()["details"] == [
            {"field": "header.x-csrf-token", "message": "missing or not this session's token"}]
    assert (await client.post("/pool", headers={"X-CSRF-Token": CSRF})).json() == {"ok": "written"}


async def test_a_bearer_write_needs_no_csrf_token(served: tuple[httpx.AsyncClient, Fakes]) -> None:
    client, _ = served
    client.cookies.set("chimera_session", "good-cookie")  # ignored: the header speaks
    answer = await client.post("/pool", headers={"Authorization": f"Bearer {READER.key_id}"})
    assert answer.json() == {"ok": "written"}


async def test_cookies_keep_the_limits(served: tuple[httpx.AsyncClient, Fakes]) -> None:
    client, fakes = served
    client.cookies.set("chimera_session", "greedy-cookie")
    assert (await client.get("/pool")).status_code == 429  # the key's own rate
    client.cookies.set("chimera_session", "good-cookie")
    fakes.blocked = True
    blocked = await client.get("/pool")
    assert blocked.status_code == 429 and blocked.headers["retry-after"] == "30"


async def test_an_app_without_sessions_ignores_the_cookie() -> None:
    fakes = Fakes()
    transport = httpx.ASGITransport(app=_app(fakes, with_sessions=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        client.cookies.set("chimera_session", "good-cookie")
        assert (await client.get("/pool")).status_code == 401
