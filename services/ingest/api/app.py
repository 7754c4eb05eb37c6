"""The public API app: the ingest service's routes plus the plugins of other services.

`create_app(settings)` builds the app; the container (clients, stores) is
created in the lifespan, so importing this module does no I/O. The route
modules are imported inside `create_app`, so they can import
`container_of` from here without an import cycle.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import uvicorn
from fastapi import FastAPI, Request

from services.ingest.adapters.keys import KeyStoreUnavailable
from services.ingest.api.middleware import RequestTelemetry
from services.ingest.bootstrap import Container, bootstrap
from services.ingest.config import IngestSettings
from shared.http.errors import OrjsonResponse, error_response, install_error_handlers

API_TITLE: Final = "Chimera Monitor API"
ROUTE_MODULES: Final = ("ops", "events", "metrics", "stats", "dashboards", "query")


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def _key_store_unavailable(_: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, KeyStoreUnavailable)
    return error_response(
        503, "API keys cannot be checked right now; retry later", [],
        {"Retry-After": str(exc.retry_after_s)},
    )


def _documented(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's OpenAPI document plus the event schemas and the bearer-key scheme."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        from services.ingest.api.events import event_component_schemas

        schema = generate()
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {}).update(event_component_schemas())
        components.setdefault("securitySchemes", {})["bearerAuth"] = {
            "type": "http", "scheme": "bearer",
            "description": "An API key from `chimera keys create`; scopes ingest, read, admin.",
        }
        return schema

    return openapi


def server_config(app: FastAPI, settings: IngestSettings, **overrides: Any) -> uvicorn.Config:
    """How uvicorn serves the app: in production (`python -m services.ingest`) and in tests alike."""
    options: dict[str, Any] = {
        "host": settings.http_host,
        "port": settings.http_port,
        "lifespan": "on",
        "timeout_graceful_shutdown": settings.shutdown_grace_s,
        "h11_max_incomplete_event_size": settings.http_max_request_head_bytes,
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
        app.state.authenticator = container.authenticator
        app.state.rate_limiter = container.rate_limiter
        for plugin in container.plugins:
            app.include_router(plugin.router())
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
    )
    install_error_handlers(app)
    app.add_exception_handler(KeyStoreUnavailable, _key_store_unavailable)
    app.add_middleware(RequestTelemetry)
    for name in ROUTE_MODULES:
        module = importlib.import_module(f"services.ingest.api.{name}")
        app.include_router(module.router)
    app.openapi = _documented(app)  # type: ignore[method-assign]
    return app
