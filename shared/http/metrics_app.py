"""The small app a stream service serves beside its work: `/metrics` and `/healthz`.

For services without a public API (the alerter, the notifier): their
Prometheus exposition, rendered on each scrape by the function given.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from shared.http.headers import SecurityHeaders

__all__ = ["metrics_app"]


def metrics_app(title: str, render: Callable[[], bytes]) -> FastAPI:
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    app.add_middleware(SecurityHeaders)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
