"""Who is calling, and may they? The FastAPI side of API keys (CONTRACT.md section 3).

Every router of every service declares what it needs with
`Depends(require_scope(Scope.READ))`; the app that mounts the routers puts an
`Authenticator` and a `RateLimiter` on `app.state`. Keys themselves (hashing,
storage, buckets) belong to the ingest service, which owns the API keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from fastapi import Request

from shared.http.errors import ApiError


class Scope(StrEnum):
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated API key."""

    key_id: str  # api_keys.id (a uuid)
    name: str
    scopes: frozenset[Scope]
    # Requests per second this key may make; None means the service default.
    rate_limit_per_second: float | None = None


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal | None:
        """The key's principal, or None when the key is unknown or revoked."""
        ...


class RateLimiter(Protocol):
    def retry_after_s(self, principal: Principal) -> float:
        """Take one token; 0 when allowed, else seconds until the next token."""
        ...


_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="chimera"'}


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Authorization header must be 'Bearer <api key>'",
                       [{"field": "header.authorization", "message": "expected a Bearer token"}],
                       _UNAUTHORIZED_HEADERS)
    return token.strip()


async def principal_of(request: Request) -> Principal | None:
    """The caller's principal, None without a key; 401 for a bad or revoked key, 429 over its rate."""
    token = _token(request)
    if token is None:
        return None
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(token)
    if principal is None:
        raise ApiError(401, "unknown or revoked API key", [], _UNAUTHORIZED_HEADERS)
    limiter: RateLimiter = request.app.state.rate_limiter
    wait_s = limiter.retry_after_s(principal)
    if wait_s > 0:
        raise ApiError(429, "rate limit exceeded for this API key", [],
                       {"Retry-After": str(max(1, int(wait_s + 0.999)))})
    request.state.principal = principal
    return principal


def require_scope(scope: Scope) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller must present a key holding `scope` (401 without a key, 403 without the scope)."""

    async def dependency(request: Request) -> Principal:
        principal = await principal_of(request)
        if principal is None:
            raise ApiError(401, "an API key is required", [], _UNAUTHORIZED_HEADERS)
        if scope not in principal.scopes:
            raise ApiError(403, f"this API key lacks the '{scope}' scope")
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


async def optional_principal(request: Request) -> Principal | None:
    """For endpoints readable without a key (public dashboards): the principal when a key is given."""
    return await principal_of(request)
