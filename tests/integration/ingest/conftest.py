"""The ingest API served for real: uvicorn on a free loopback port, per test.

Each test gets its own topic prefix and database schema (see tests/conftest.py),
migrated and with its topics created, and an `api` handle to make keys and
send requests over HTTP.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.ingest.adapters.keys import ApiKeyStore
from services.ingest.api.app import create_app
from services.ingest.config import IngestSettings
from shared.db.migrate import migrate_database
from shared.http.auth import Scope
from shared.kafka.topics import ensure_topics
from tests.conftest import Endpoints


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Api:
    base_url: str
    settings: IngestSettings
    app: FastAPI
    client: httpx.AsyncClient

    async def key(self, *scopes: str, name: str = "test", rate_limit_per_second: float | None = None) -> str:
        """A new API key with these scopes (plaintext)."""
        store = ApiKeyStore(self.app.state.container.pool)
        _, plaintext = await store.create(
            name, {Scope(s) for s in scopes}, rate_limit_per_second=rate_limit_per_second
        )
        return plaintext

    async def headers(self, *scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.key(*scopes)}"}


def make_settings(endpoints: Endpoints, topic_prefix: str, db_schema: str, **overrides: object) -> IngestSettings:
    return IngestSettings(
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
        kafka_topic_prefix=topic_prefix,
        kafka_topic_partitions=3,
        database_url=endpoints.database_url,
        database_schema=db_schema,
        http_port=free_port(),
        **overrides,  # type: ignore[arg-type]
    )


async def serve(settings: IngestSettings) -> AsyncIterator[Api]:
    """Run the app until the caller is done; migrations and topics first, as `make up` does."""
    await migrate_database(settings)
    await ensure_topics(settings)
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.http_port, log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="test-api-server")
    try:
        while not server.started:
            if task.done():
                task.result()  # raises the startup failure
            await asyncio.sleep(0.02)
        base_url = f"http://127.0.0.1:{settings.http_port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            yield Api(base_url, settings, app, client)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def ingest_settings(endpoints: Endpoints, topic_prefix: str, db_schema: str) -> IngestSettings:
    return make_settings(endpoints, topic_prefix, db_schema)


@pytest.fixture
async def api(ingest_settings: IngestSettings) -> AsyncIterator[Api]:
    async for running in serve(ingest_settings):
        yield running
