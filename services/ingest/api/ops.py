"""Operations endpoints, open without a key: /healthz, /readyz, /metrics.

/metrics is on the public port only while METRICS_PORT is unset; with it
set, `metrics_app()` serves it on its own listener (the monitoring network)
and the public port answers 404 there. Renders are cached for
METRICS_CACHE_S and shared by concurrent scrapes, so a scrape loop costs
one render per period, not one per request.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from services.ingest.api.common_params import container as container_of
from shared.db.errors import DATABASE_ERRORS
from shared.http.errors import install_error_handlers
from shared.http.guard import guarded_router, include_guarded
from shared.http.headers import SecurityHeaders

router = guarded_router(tags=["operations"])
exposition_router = guarded_router(tags=["operations"])


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


class NotReady(Readiness):
    error: str
    details: list[dict[str, str]]


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _postgres_ok(request: Request, timeout_s: float) -> str | None:
    """None when PostgreSQL answers a query in time, else why not."""
    pool = container_of(request).pool
    try:
        async with asyncio.timeout(timeout_s):
            await pool.fetchval("SELECT 1")
    except DATABASE_ERRORS as exc:
        return f"PostgreSQL did not answer: {exc!r}"
    return None


async def _kafka_ok(request: Request) -> str | None:
    sink = container_of(request).events
    if await sink.ready():
        return None
    return sink.last_error or "Kafka did not answer a metadata request"


@router.get(
    "/readyz",
    summary="Kafka and PostgreSQL are reachable",
    responses={
        200: {"model": Readiness, "description": "Both answer"},
        503: {"model": NotReady, "description": "A dependency is down; `details` says which"},
    },
)
async def readyz(request: Request) -> Response:
    timeout_s = container_of(request).settings.readiness_timeout_s
    kafka, postgres = await asyncio.gather(_kafka_ok(request), _postgres_ok(request, timeout_s))
    problems = {name: why for name, why in (("kafka", kafka), ("postgres", postgres)) if why}
    checks = {name: ("down" if name in problems else "ok") for name in ("kafka", "postgres")}
    if not problems:
        return _json({"status": "ready", "checks": checks})
    return _json(
        {
            "error": f"not ready: {' and '.join(problems)} unreachable",
            "details": [{"field": name, "message": why} for name, why in problems.items()],
            "status": "not ready",
            "checks": checks,
        },
        503,
        {"Retry-After": "5"},
    )


@exposition_router.get(
    "/metrics",
    summary="Prometheus metrics of this service, custom metrics included",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    body = await container_of(request).exposition.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def metrics_app(public: FastAPI) -> FastAPI:
    """/metrics alone, for a listener of its own; reads the public app's container (built by its lifespan)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    app.state = public.state  # the same container, limits and gate: one service, two ports
    install_error_handlers(app)
    include_guarded(app, exposition_router)
    app.add_middleware(SecurityHeaders)
    return app
