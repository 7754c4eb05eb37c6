"""The small app a stream service serves beside its work: `/metrics`, `/healthz` and `/readyz`.

For services without a public API (the alerter, the notifier): their
Prometheus exposition, rendered on each scrape by the function given.
`/readyz` asks the service's own `ready` check (an `async () -> bool`, which
answers False rather than raising); without one, a process that serves this
app is ready, which is what `chimera dev up` waits for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from shared.http.headers import SecurityHeaders

__all__ = ["ReadyCheck", "metrics_app"]

ReadyCheck = Callable[[], Awaitable[bool]]


def metrics_app(title: str, render: Callable[[], bytes], ready: ReadyCheck | None = None) -> FastAPI:
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    app.add_middleware(SecurityHeaders)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        if ready is None or await ready():
            return JSONResponse({"status": "ready"})
        # The same body as the aggregator's and the API's 503, and their Retry-After.
        return JSONResponse({"error": "not ready", "details": [], "status": "not ready"}, 503,
                            headers={"Retry-After": "5"})

    return app
