"""Request telemetry as plain ASGI middleware: latency by route template, requests in flight.

Plain ASGI rather than BaseHTTPMiddleware: it neither buffers nor re-wraps
the request body stream, which POST /v1/events reads incrementally.
The route template comes from `scope["route"]`, which the router fills in
when it matches; unmatched paths are all counted as one route, so scanning
random URLs cannot create metric series.
"""

from __future__ import annotations

import time
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED_ROUTE: Final = "<unmatched>"
# HTTP allows any token as a method; labels keep to the standard ones.
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(scope: Scope) -> str:
    method = scope.get("method", "")
    return method if method in _METHODS else "OTHER"


def route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestTelemetry:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        container = getattr(scope["app"].state, "container", None)
        if container is None:  # before the lifespan has built it
            await self.app(scope, receive, send)
            return
        telemetry = container.telemetry
        status = 500  # what the client sees if the app fails before responding
        started_s = time.perf_counter()

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        telemetry.requests_in_flight.inc()
        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            telemetry.requests_in_flight.dec()
            telemetry.request_duration_s.labels(
                method_label(scope), route_template(scope), str(status)
            ).observe(time.perf_counter() - started_s)
