"""The public API app: the ingest service's routes plus the plugins of other services.

`create_app(settings)` builds the app; the container (clients, stores) is
created in the lifespan, so importing this module does no I/O. Every
router is built with `shared.http.guard.guarded_router()`: keys are checked
and bodies bounded before a route reads anything (docs/ingest-security.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, Final

import uvicorn
from fastapi import FastAPI, Request

from services.ingest.adapters.keys import KeyStoreUnavailable
from services.ingest.api import dashboards, events, live, metrics, miners, ops, pool_history, query, stats
from services.ingest.api.middleware import RequestTelemetry
from services.ingest.bootstrap import body_limits, bootstrap
from services.ingest.config import IngestSettings
from services.ingest.console.routes import install_console
from shared.http.docs import mount_local_docs
from shared.http.errors import OrjsonResponse, error_response, install_error_handlers
from shared.http.guard import BodyLimits, document_body_limits, include_guarded
from shared.http.headers import SecurityHeaders
from shared.http.protocol import ConnectionLimits, guarded_protocol

API_TITLE: Final = "Chimera Monitor API"


async def _key_store_unavailable(_: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, KeyStoreUnavailable)
    return error_response(
        503, "API keys cannot be checked right now; retry later", [],
        {"Retry-After": str(exc.retry_after_s)},
    )


def _documented(app: FastAPI, settings: IngestSettings) -> Callable[[], dict[str, Any]]:
    """FastAPI's OpenAPI document plus the event schemas and every route's body limit."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {}).update(events.event_component_schemas())
        document_body_limits(schema, app.state.body_limits)  # the plugins' too, once mounted
        return schema

    return openapi


def server_config(app: FastAPI, settings: IngestSettings, **overrides: Any) -> uvicorn.Config:
    """How uvicorn serves the app: in production (`python -m services.ingest`) and in tests alike."""
    limits: ConnectionLimits = app.state.connection_limits
    options: dict[str, Any] = {
        "host": settings.http_host,
        "port": settings.http_port,
        "lifespan": "on",
        "loop": settings.http_loop,
        "timeout_graceful_shutdown": settings.shutdown_grace_s,
        "h11_max_incomplete_event_size": settings.http_max_request_head_bytes,
        "http": guarded_protocol(limits),
        "limit_concurrency": settings.http_max_connections,
        # X-Forwarded-For/-Proto only from the proxies named in HTTP_TRUSTED_PROXIES
        # (uvicorn's own default would believe any local peer).
        "proxy_headers": bool(settings.http_trusted_proxies),
        "forwarded_allow_ips": settings.http_trusted_proxies or "",
        "log_level": settings.log_level.lower(),
        "access_log": False,
        "server_header": False,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


def create_app(settings: IngestSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await bootstrap(settings)
        app.state.container = container
        app.state.gate = container.gate
        app.state.body_observer = container.telemetry
        container.telemetry.watch_connections(app.state.connection_limits)
        # Event streams never end on their own: the server's shutdown ends them first.
        app.state.connection_limits.on_drain(container.live.close)
        limits: BodyLimits = app.state.body_limits
        for plugin in container.plugins:
            include_guarded(app, plugin.router())
            limits = replace(limits, by_route={**limits.by_route, **plugin.body_limits()})
        app.state.body_limits = limits
        app.openapi_schema = None  # plugin routes change the document
        try:
            await container.start()
            yield
        finally:
            await container.stop()

    app = FastAPI(
        title=API_TITLE,
        version="1",
        lifespan=lifespan,
        docs_url=None,  # served locally below, or not at all
        redoc_url=None,
        # No redirect on a trailing slash: Starlette builds the Location from the Host
        # header, which the client controls. `/api/pool/stats/` is a 404.
        redirect_slashes=False,
    )
    app.state.body_limits = body_limits(settings)
    app.state.connection_limits = ConnectionLimits(
        header_timeout_s=settings.http_header_timeout_s,
        max_connections_per_client=settings.http_max_connections_per_client)
    install_error_handlers(app)
    app.add_exception_handler(KeyStoreUnavailable, _key_store_unavailable)
    app.add_middleware(RequestTelemetry)
    app.add_middleware(SecurityHeaders)
    for router in (ops.router, events.router, metrics.router, stats.router, dashboards.router, query.router,
                   miners.router, live.router, pool_history.router):
        include_guarded(app, router)
    if settings.metrics_port is None:
        include_guarded(app, ops.exposition_router)
    if settings.api_docs == "local":
        mount_local_docs(app, API_TITLE)
    if settings.console_enabled:
        install_console(app, settings)  # the web console at / (docs/console.md)
    app.openapi = _documented(app, settings)  # type: ignore[method-assign]
    return app
