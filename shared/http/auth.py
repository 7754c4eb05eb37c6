"""Who is calling, and may they? The FastAPI side of API keys (docs/contract.md section 3).

Every router of every service declares what it needs with
`Depends(require_scope(Scope.READ))`; the app that mounts the routers puts a
`Gate` on `app.state.gate`. Keys themselves (hashing, storage, buckets)
belong to the ingest service, which owns the API keys.

The order of checks is what makes guessing keys expensive:
1. no Authorization header: 401 (counted, not limited: nothing was guessed);
2. the client address has failed too often lately: 429, before the key is
   even looked at, so a guesser learns nothing while it is blocked;
3. a malformed header or an unknown, revoked or expired key: 401, and one
   failure charged to the client address;
4. the key is over its own request rate: 429;
5. the key lacks the scope: 403. A key limited to one miner (`miner:<name>`)
   holds no scope: it passes only the routes that let miner keys in
   (`require_scope(scope, miner=True)`), which then narrow what they answer
   to `principal.miner` (`ensure_miner()` for a miner named in the request).
`authorize()` runs once per request and remembers its answer in the
request's state: `shared.http.guard` calls it before the body is read, the
route's dependency calls it again and gets the same principal for free.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.access import KeyRefused, Principal, Scope  # also imported from here by the routers
from shared.http.errors import ApiError


class AuthFailure(StrEnum):
    """Every reason a request is turned away by authentication, as counted."""

    MISSING = "missing"
    MALFORMED = KeyRefused.MALFORMED.value
    UNKNOWN = KeyRefused.UNKNOWN.value
    REVOKED = KeyRefused.REVOKED.value
    EXPIRED = KeyRefused.EXPIRED.value


class Limit(StrEnum):
    """Which limit answered 429."""

    KEY_RATE = "key_rate"
    AUTH_FAILURES = "auth_failures"


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal | KeyRefused:
        """The key's principal, or why the token is refused."""
        ...


class RateLimiter(Protocol):
    def retry_after_s(self, principal: Principal) -> float:
        """Take one token; 0 when allowed, else seconds until the next token."""
        ...


class FailureLimiter(Protocol):
    """Failed authentications per client address."""

    def blocked_for_s(self, address: str) -> float:
        """0 while the address may still try, else seconds until it may (takes nothing)."""
        ...

    def failed(self, address: str) -> None:
        """Charge one failed attempt to the address."""
        ...


class AuthObserver(Protocol):
    """Counters of the security events the seed's alerts need."""

    def auth_failed(self, reason: AuthFailure) -> None: ...

    def forbidden(self, scope: Scope) -> None: ...

    def rate_limited_by(self, limit: Limit) -> None: ...


@dataclass(frozen=True)
class Gate:
    """What an app mounting these routers provides on `app.state.gate`."""

    authenticator: Authenticator
    key_limiter: RateLimiter
    failure_limiter: FailureLimiter
    observer: AuthObserver


_UNAUTHORIZED_HEADERS: Final = {"WWW-Authenticate": 'Bearer realm="chimera"'}
_PRINCIPAL: Final = "chimera_principal"  # request.state attribute holding authorize()'s answer
# Declares the scheme in the OpenAPI document (FastAPI adds it to every
# operation that depends on it); the header itself is read by `_token`.
BEARER: Final = HTTPBearer(
    scheme_name="bearerAuth", auto_error=False,
    description="An API key from `chimera keys create`; scopes ingest, read, admin, or `miner:<name>` alone: "
                "a key limited to that one miner, let in only by the routes that say so (a miner's stats, "
                "metrics and alerts), which answer for that miner only (403 for another miner).",
)


def client_address(request: Request) -> str:
    """The peer, or the address a trusted proxy forwarded (uvicorn's proxy headers, configured per service)."""
    return request.client.host if request.client is not None else "unknown"


def _token(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _refused(gate: Gate, request: Request, reason: KeyRefused) -> ApiError:
    gate.failure_limiter.failed(client_address(request))
    gate.observer.auth_failed(AuthFailure(reason.value))
    if reason is KeyRefused.MALFORMED:
        return ApiError(401, "Authorization header must be 'Bearer <api key>'",
                        [{"field": "header.authorization", "message": "expected a Bearer token"}],
                        _UNAUTHORIZED_HEADERS)
    return ApiError(401, "unknown, revoked or expired API key", [], _UNAUTHORIZED_HEADERS)


def _retry_after(wait_s: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, int(wait_s + 0.999)))}


async def principal_of(request: Request) -> Principal | None:
    """The caller's principal, None without a key; 401 for a bad key, 429 over a limit. Once per request."""
    if hasattr(request.state, _PRINCIPAL):
        known: Principal | None = getattr(request.state, _PRINCIPAL)
        return known
    principal = await _authenticate(request)
    setattr(request.state, _PRINCIPAL, principal)
    return principal


async def _authenticate(request: Request) -> Principal | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    gate: Gate = request.app.state.gate
    blocked_s = gate.failure_limiter.blocked_for_s(client_address(request))
    if blocked_s > 0:
        gate.observer.rate_limited_by(Limit.AUTH_FAILURES)
        raise ApiError(429, "too many failed authentications from this address; retry later", [],
                       _retry_after(blocked_s))
    token = _token(header)
    if token is None:
        raise _refused(gate, request, KeyRefused.MALFORMED)
    outcome = await gate.authenticator.authenticate(token)
    if isinstance(outcome, KeyRefused):
        raise _refused(gate, request, outcome)
    wait_s = gate.key_limiter.retry_after_s(outcome)
    if wait_s > 0:
        gate.observer.rate_limited_by(Limit.KEY_RATE)
        raise ApiError(429, "rate limit exceeded for this API key", [], _retry_after(wait_s))
    return outcome


async def authorize(request: Request, scope: Scope, *, miner: bool = False) -> Principal:
    """The caller must present a key holding `scope` (or, with `miner`, one limited to a miner).

    401 without a key, 403 without the scope. A key limited to a miner is let
    through only with `miner`: the caller then narrows to `principal.miner`."""
    principal = await principal_of(request)
    gate: Gate = request.app.state.gate
    if principal is None:
        gate.observer.auth_failed(AuthFailure.MISSING)
        raise ApiError(401, "an API key is required", [], _UNAUTHORIZED_HEADERS)
    allowed = miner if principal.miner is not None else scope in principal.scopes
    if not allowed:
        gate.observer.forbidden(scope)
        raise ApiError(403, f"this API key lacks the '{scope}' scope")
    return principal


def ensure_miner(principal: Principal, miner_id: str, field: str = "path.minerId") -> None:
    """403 when a key limited to a miner asks for another miner (`field` names where); no-op for other keys."""
    if principal.miner is None or principal.miner == miner_id:
        return
    raise ApiError(403, f"this key may read miner {principal.miner} only",
                   [{"field": field, "message": f"this API key is limited to miner {principal.miner}"}])


def require_scope(scope: Scope, *, miner: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller must present a key holding `scope`; with `miner`, a miner's key too.

    Routes built on `shared.http.guard.GuardedRoute` find it (`required_scope`,
    `miner_allowed`) and run the check before the body is read; the dependency
    itself then returns the remembered answer and puts the scheme in the
    OpenAPI document. A route with `miner=True` must narrow to `principal.miner`.
    """

    async def dependency(
        request: Request, _: HTTPAuthorizationCredentials | None = Security(BEARER)
    ) -> Principal:
        return await authorize(request, scope, miner=miner)

    dependency.__name__ = f"require_{scope}_or_miner" if miner else f"require_{scope}"
    dependency.required_scope = scope  # type: ignore[attr-defined]
    dependency.miner_allowed = miner  # type: ignore[attr-defined]
    return dependency


async def optional_principal(request: Request) -> Principal | None:
    """For endpoints readable without a key (public dashboards): the principal when a key is given."""
    return await principal_of(request)


# The OpenAPI security of an operation readable with or without a key.
OPTIONAL_KEY_SECURITY: Final = [{}, {"bearerAuth": []}]
