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

The web console's session cookie (`chimera_session`, docs/console.md) stands
in for the header when there is none and the app's Gate has `sessions`: the
same order applies (2, then the session instead of the key, then 4 and 5).
A cookie naming no live session is no credential at all (step 1), and is not
charged: its token is 256 random bits, nothing anyone can guess, and a
browser keeps sending a cookie its session lost elsewhere (signed out in
another tab, key revoked). A cookie-authenticated POST/PUT/PATCH/DELETE must
echo the session's CSRF token in `X-CSRF-Token`, else 403 (a Bearer request
cannot be forged by another site, so it is not asked).
"""

from __future__ import annotations

import hmac
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


class CookieSession(Protocol):
    """A live console session: its key's principal (checked again on every request) and CSRF token."""

    @property
    def principal(self) -> Principal: ...

    @property
    def csrf_token(self) -> str: ...


class SessionResolver(Protocol):
    async def resolve(self, token: str) -> CookieSession | None:
        """The live session of a cookie's token; None when unknown, expired, or its key is refused."""
        ...


@dataclass(frozen=True)
class Gate:
    """What an app mounting these routers provides on `app.state.gate`.

    `sessions` only where the console is served (the ingest app): elsewhere
    cookies are ignored and only the Authorization header counts."""

    authenticator: Authenticator
    key_limiter: RateLimiter
    failure_limiter: FailureLimiter
    observer: AuthObserver
    sessions: SessionResolver | None = None


_UNAUTHORIZED_HEADERS: Final = {"WWW-Authenticate": 'Bearer realm="chimera"'}
_PRINCIPAL: Final = "chimera_principal"  # request.state attribute holding authorize()'s answer
_SESSION: Final = "chimera_session"  # request.state attribute holding the cookie's session, if any
SESSION_COOKIE: Final = "chimera_session"
CSRF_HEADER: Final = "x-csrf-token"
# The writes a forged cross-site request would be: SameSite=Strict already keeps the
# cookie off them, the token is the second lock (an older browser, a subdomain).
_WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
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
    gate: Gate = request.app.state.gate
    if header is None:
        return await _session_principal(gate, request)
    _refuse_blocked(gate, request)
    token = _token(header)
    if token is None:
        raise _refused(gate, request, KeyRefused.MALFORMED)
    return await _key_principal(gate, request, token)


async def sign_in_principal(request: Request, token: str) -> Principal:
    """Steps 2 to 4 for a key typed into the console's sign-in form: what the header would cost.

    Raises the `ApiError` the API would answer (429, 401), so guessing keys
    through the form is exactly as expensive, and as counted, as through the API."""
    gate: Gate = request.app.state.gate
    _refuse_blocked(gate, request)
    return await _key_principal(gate, request, token.strip())


def _refuse_blocked(gate: Gate, request: Request) -> None:
    blocked_s = gate.failure_limiter.blocked_for_s(client_address(request))
    if blocked_s > 0:
        gate.observer.rate_limited_by(Limit.AUTH_FAILURES)
        raise ApiError(429, "too many failed authentications from this address; retry later", [],
                       _retry_after(blocked_s))


async def _key_principal(gate: Gate, request: Request, token: str) -> Principal:
    outcome = await gate.authenticator.authenticate(token)
    if isinstance(outcome, KeyRefused):
        raise _refused(gate, request, outcome)
    _refuse_over_rate(gate, outcome)
    return outcome


def _refuse_over_rate(gate: Gate, principal: Principal) -> None:
    wait_s = gate.key_limiter.retry_after_s(principal)
    if wait_s > 0:
        gate.observer.rate_limited_by(Limit.KEY_RATE)
        raise ApiError(429, "rate limit exceeded for this API key", [], _retry_after(wait_s))


async def _session_principal(gate: Gate, request: Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if token is None or gate.sessions is None:
        return None
    _refuse_blocked(gate, request)
    session = await gate.sessions.resolve(token)
    if session is None:
        return None
    if request.method in _WRITE_METHODS and not _same_token(request.headers.get(CSRF_HEADER), session.csrf_token):
        raise ApiError(403, "a write from the console must carry the session's CSRF token", [
            {"field": f"header.{CSRF_HEADER}", "message": "missing or not this session's token"}])
    _refuse_over_rate(gate, session.principal)
    setattr(request.state, _SESSION, session)
    return session.principal


def _same_token(sent: str | None, held: str) -> bool:
    if sent is None or not held:
        return False
    return hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), held.encode("utf-8"))


def session_of(request: Request) -> CookieSession | None:
    """The console session that authenticated this request (after `principal_of`); None for a Bearer key."""
    session: CookieSession | None = getattr(request.state, _SESSION, None)
    return session


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
