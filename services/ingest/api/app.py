"""The public API app: the ingest service's routes plus the plugins of other services.

`create_app(settings)` builds the app; the container (clients, stores) is
created in the lifespan, so importing this module does no I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse

from services.ingest.api import dashboards, events, metrics, ops, query, stats
from services.ingest.api.middleware import RequestTelemetry
from services.ingest.bootstrap import Container, bootstrap
from services.ingest.config import IngestSettings
from shared.http.errors import install_error_handlers

API_TITLE = "Chimera Monitor API"


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def create_app(settings: IngestSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await bootstrap(settings)
        app.state.container = container
        app.state.authenticator = container.authenticator
        app.state.rate_limiter = container.rate_limiter
        for plugin in container.plugins:
            app.include_router(plugin.router())
        await container.start()
        try:
            yield
        finally:
            await container.stop()

    app = FastAPI(
        title=API_TITLE,
        version="1",
        default_response_class=ORJSONResponse,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(RequestTelemetry)
    for module in (ops, events, metrics, stats, dashboards, query):
        app.include_router(module.router)
    return app
