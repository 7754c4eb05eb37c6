"""Routes that check the caller's key, then bound the body, before FastAPI reads a byte of it.

FastAPI reads and parses a route's JSON body before it solves the route's
dependencies: with `Depends(require_scope(...))` alone, a body of any size
is buffered (and a malformed one answered 422) before the key is looked
at. `GuardedRoute` runs first, for every route of every router built with
`guarded_router()`:
1. the scope the route requires (found among its dependencies), and whether
   it lets a miner's key in, is checked: 401, 403 or 429 before anything is
   read;
2. the body reaches FastAPI through a receive that counts bytes: a declared
   Content-Length over the route's limit, or the bytes read passing it, end
   the request with 413 at once, so nothing past the limit is buffered;
3. the whole body must arrive within the body timeout of the headers, or
   the request ends with 408 (a client trickling a body holds nothing long).
The limits come from `app.state.body_limits` (a `BodyLimits`), refusals are
counted by `app.state.body_observer`; `include_guarded()` refuses at start-up
a router whose routes are not guarded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Protocol

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive

from shared.http.auth import Scope, authorize
from shared.http.errors import error_response

BODY_LIMIT_EXTENSION: Final = "x-max-body-bytes"  # the OpenAPI extension documenting each route's limit


class BodyRefusal(StrEnum):
    TOO_LARGE = "too_large"
    TOO_SLOW = "too_slow"


# HTTPException subclasses: FastAPI's body reader re-raises those as they are
# (anything else it turns into a 400), so they reach the guard intact.
class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(413, f"body exceeds {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


class BodyTooSlow(StarletteHTTPException):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(408, f"body not received within {timeout_s:g} s")
        self.timeout_s = timeout_s


@dataclass(frozen=True)
class BodyLimits:
    """Bytes a request body may have, by (method, route template); `default_bytes` for the rest."""

    default_bytes: int
    timeout_s: float
    by_route: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def limit_bytes(self, method: str, path: str) -> int:
        return self.by_route.get((method, path), self.default_bytes)


class BodyObserver(Protocol):
    def body_refused(self, refusal: BodyRefusal) -> None: ...


def _declared_bytes(request: Request) -> int | None:
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else None


def bounded_receive(receive: Receive, *, limit_bytes: int, declared_bytes: int | None,
                    deadline_s: float, timeout_s: float) -> Receive:
    """`receive` refusing a body past `limit_bytes`, or one not complete by `deadline_s` (loop time)."""
    received_bytes = 0
    complete = False

    async def receive_bounded() -> Message:
        nonlocal received_bytes, complete
        if complete:  # later calls wait for a disconnect: no deadline for those
            return await receive()
        if declared_bytes is not None and declared_bytes > limit_bytes:
            raise BodyTooLarge(limit_bytes)
        try:
            async with asyncio.timeout_at(deadline_s):
                message = await receive()
        except TimeoutError:
            raise BodyTooSlow(timeout_s) from None
        if message["type"] == "http.request":
            received_bytes += len(message.get("body", b""))
            if received_bytes > limit_bytes:
                raise BodyTooLarge(limit_bytes)
            complete = not message.get("more_body", False)
        return message

    return receive_bounded


@dataclass(frozen=True)
class RequiredAccess:
    """What a route's `require_scope` dependency asks for: the scope, and whether a miner's key may come in."""

    scope: Scope
    miner_allowed: bool = False


def required_access(dependant: Dependant) -> RequiredAccess | None:
    """What a `require_scope` dependency anywhere in the route's dependency tree asks for."""
    stack = [dependant]
    while stack:
        current = stack.pop()
        scope = getattr(current.call, "required_scope", None)
        if isinstance(scope, Scope):
            # Anything but a literal True keeps miner keys out: the safe reading of an odd attribute.
            return RequiredAccess(scope, getattr(current.call, "miner_allowed", False) is True)
        stack.extend(current.dependencies)
    return None


class GuardedRoute(APIRoute):
    """An APIRoute that authorizes, then bounds the body, before FastAPI's handler reads it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        access = required_access(self.dependant)
        path = self.path_format

        async def guarded(request: Request) -> Response:
            if access is not None:
                await authorize(request, access.scope, miner=access.miner_allowed)
            limits: BodyLimits = request.app.state.body_limits
            observer: BodyObserver = request.app.state.body_observer
            limit_bytes = limits.limit_bytes(request.method, path)
            receive = bounded_receive(
                request.receive, limit_bytes=limit_bytes, declared_bytes=_declared_bytes(request),
                deadline_s=asyncio.get_running_loop().time() + limits.timeout_s, timeout_s=limits.timeout_s)
            try:
                return await handler(Request(request.scope, receive))
            except BodyTooLarge as exc:
                observer.body_refused(BodyRefusal.TOO_LARGE)
                # No "Connection: close": uvicorn would close the socket at once, and with the
                # rest of the body unread the kernel resets it, which can destroy this answer.
                # The server protocol (shared.http.protocol) ends the connection gently instead.
                return error_response(413, str(exc.detail), [
                    {"field": "body", "message": f"at most {exc.limit_bytes} bytes for {request.method} {path}"}
                ])
            except BodyTooSlow as exc:
                observer.body_refused(BodyRefusal.TOO_SLOW)
                return error_response(408, str(exc.detail), [
                    {"field": "body", "message": f"send the whole body within {exc.timeout_s:g} s of the headers"}
                ])

        return guarded


def guarded_router(**options: Any) -> APIRouter:
    """An APIRouter whose routes are `GuardedRoute`s: what every service's routers are built with."""
    return APIRouter(route_class=GuardedRoute, **options)


class UnguardedRoute(Exception):
    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"route {path} is not a GuardedRoute: build its router with guarded_router()")


def include_guarded(app: FastAPI, router: APIRouter) -> None:
    """Include a router whose every API route is guarded; refuse (at start-up) one that is not."""
    for route in router.routes:
        if isinstance(route, APIRoute) and not isinstance(route, GuardedRoute):
            raise UnguardedRoute(route.path)
    app.include_router(router)


def document_body_limits(schema: dict[str, Any], limits: BodyLimits) -> None:
    """Put each operation's body limit in the OpenAPI document (`x-max-body-bytes`, and its description)."""
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            limit_bytes = limits.limit_bytes(method.upper(), path)
            operation[BODY_LIMIT_EXTENSION] = limit_bytes
            note = (f"Body: at most {limit_bytes} bytes (413 as soon as more arrives), "
                    f"sent within {limits.timeout_s:g} s of the headers (else 408).")
            operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
