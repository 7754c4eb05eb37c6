"""The security counters the Prometheus alerts read (deploy/prometheus/alert_rules.yml, group
"security"): every way `shared.http.auth` turns a request away counts on the ingest's telemetry.

A small app in memory (httpx's ASGI transport) with a hand-written authenticator and
limiters, and the real `IngestTelemetry` as the gate's observer on a fresh registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from prometheus_client import CollectorRegistry

from services.ingest.telemetry import IngestTelemetry
from shared.access import KeyRefused, Principal, Scope
from shared.http.auth import AuthFailure, Gate, Limit, require_scope
from shared.http.errors import install_error_handlers

pytestmark = pytest.mark.unit

READER = Principal("k-read", "dashboard", frozenset({Scope.READ}))
INGESTER = Principal("k-ingest", "node", frozenset({Scope.INGEST}))
GREEDY = Principal("k-greedy", "poller", frozenset({Scope.READ}))
REFUSED = {"revoked-key": KeyRefused.REVOKED, "expired-key": KeyRefused.EXPIRED}


class FakeKeys:
    """Authenticator, key limiter and failure limiter in one, as `Gate` wants them."""

    def __init__(self) -> None:
        self.blocked = False

    async def authenticate(self, token: str) -> Principal | KeyRefused:
        known = {p.key_id: p for p in (READER, INGESTER, GREEDY)}
        return known.get(token) or REFUSED.get(token, KeyRefused.UNKNOWN)

    def retry_after_s(self, principal: Principal) -> float:
        return 5.0 if principal is GREEDY else 0.0

    def blocked_for_s(self, address: str) -> float:
        return 30.0 if self.blocked else 0.0

    def failed(self, address: str) -> None:
        return None


@pytest.fixture
async def served() -> AsyncIterator[tuple[httpx.AsyncClient, FakeKeys, CollectorRegistry]]:
    registry = CollectorRegistry()
    keys = FakeKeys()
    router = APIRouter()

    @router.get("/pool", dependencies=[Depends(require_scope(Scope.READ))])
    async def pool() -> dict[str, str]:
        return {"ok": "yes"}

    app = FastAPI()
    app.include_router(router)
    install_error_handlers(app)
    app.state.gate = Gate(authenticator=keys, key_limiter=keys, failure_limiter=keys,
                          observer=IngestTelemetry(registry))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, keys, registry


def _count(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, f"{name}{labels} is not exported"
    return value


def test_every_label_value_exists_before_the_first_event() -> None:
    # rate() over a series that appears only with its first increment misses that increment.
    registry = CollectorRegistry()
    IngestTelemetry(registry)
    for reason in AuthFailure:
        assert _count(registry, "chimera_api_auth_failures_total", reason=reason.value) == 0
    for limit in Limit:
        assert _count(registry, "chimera_api_rate_limited_total", limit=limit.value) == 0
    for scope in Scope:
        assert _count(registry, "chimera_api_auth_forbidden_total", scope=scope.value) == 0


async def test_each_refusal_counts_under_its_own_reason(
        served: tuple[httpx.AsyncClient, FakeKeys, CollectorRegistry]) -> None:
    client, _, registry = served
    cases = [
        ({}, 401, "missing"),
        ({"Authorization": "Basic abc"}, 401, "malformed"),
        ({"Authorization": "Bearer nobody"}, 401, "unknown"),
        ({"Authorization": "Bearer revoked-key"}, 401, "revoked"),
        ({"Authorization": "Bearer expired-key"}, 401, "expired"),
        ({"Authorization": "Bearer expired-key"}, 401, "expired"),
    ]
    for headers, status, _reason in cases:
        assert (await client.get("/pool", headers=headers)).status_code == status
    for reason in AuthFailure:
        expected = sum(1 for *_, r in cases if r == reason.value)
        assert _count(registry, "chimera_api_auth_failures_total", reason=reason.value) == expected, reason
    # A good key is not counted anywhere.
    assert (await client.get("/pool", headers={"Authorization": "Bearer k-read"})).status_code == 200
    assert sum(_count(registry, "chimera_api_auth_failures_total", reason=r.value) for r in AuthFailure) == 6


async def test_scope_and_rate_refusals_count(
        served: tuple[httpx.AsyncClient, FakeKeys, CollectorRegistry]) -> None:
    client, keys, registry = served
    assert (await client.get("/pool", headers={"Authorization": "Bearer k-ingest"})).status_code == 403
    assert _count(registry, "chimera_api_auth_forbidden_total", scope="read") == 1

    assert (await client.get("/pool", headers={"Authorization": "Bearer k-greedy"})).status_code == 429
    assert _count(registry, "chimera_api_rate_limited_total", limit="key_rate") == 1

    keys.blocked = True  # the address failed too often: even a valid key gets 429, counted as such
    assert (await client.get("/pool", headers={"Authorization": "Bearer k-read"})).status_code == 429
    assert _count(registry, "chimera_api_rate_limited_total", limit="auth_failures") == 1
    assert sum(_count(registry, "chimera_api_auth_failures_total", reason=r.value) for r in AuthFailure) == 0
