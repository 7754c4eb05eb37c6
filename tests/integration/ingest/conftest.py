"""The ingest API served for real: uvicorn on a free loopback port.

Each test gets its own topic prefix and database schema (see tests/conftest.py),
migrated and with its topics created, and an `api` handle to make keys and
send requests over HTTP. `module_api` is one server shared by a module's
tests (its own prefix and schema too), for modules of many small cases.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from fastapi import FastAPI

from services.ingest.adapters.keys import ApiKeyStore
from services.ingest.api.app import create_app, server_config
from services.ingest.bootstrap import Container
from services.ingest.config import IngestSettings
from shared.db.migrate import migrate_database
from shared.http.auth import Scope
from shared.kafka.options import client_options
from shared.kafka.topics import ensure_topics, topic_specs
from tests.conftest import Endpoints, own_schema, unique_name
from tests.integration.conftest import free_port


@dataclass
class Api:
    base_url: str
    settings: IngestSettings
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def container(self) -> Container:
        container: Container = self.app.state.container
        return container

    async def key(self, *scopes: str, name: str = "test", rate_limit_per_second: float | None = None) -> str:
        """A new API key with these scopes (plaintext)."""
        store = ApiKeyStore(self.container.pool)
        _, plaintext = await store.create(
            name, {Scope(s) for s in scopes}, rate_limit_per_second=rate_limit_per_second
        )
        return plaintext

    async def headers(self, *scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.key(*scopes)}"}


def make_settings(
    endpoints: Endpoints, topic_prefix: str, db_schema: str, **overrides: Any
) -> IngestSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": endpoints.kafka_bootstrap_servers,
        "kafka_topic_prefix": topic_prefix,
        "kafka_topic_partitions": 3,
        "database_url": endpoints.database_url,
        "database_schema": db_schema,
        "http_port": free_port(),
    }
    values.update(overrides)
    return IngestSettings(**values)


async def delete_topics(settings: IngestSettings) -> None:
    """Drop this test's topics, so the shared broker does not fill up with them."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    try:
        await admin.start()
        await admin.delete_topics([spec.name for spec in topic_specs(settings)])
    except KafkaError:
        pass  # the broker is away (a test stopped it); nothing to clean there
    finally:
        await admin.close()


async def serve(settings: IngestSettings, *, setup: bool = True) -> AsyncIterator[Api]:
    """Run the app until the caller is done; migrations and topics first, as `make up` does."""
    if setup:
        await migrate_database(settings)
        await ensure_topics(settings)
    app = create_app(settings)
    config = server_config(app, settings, host="127.0.0.1", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="test-api-server")
    try:
        while not server.started:
            if task.done():
                task.result()  # raises the startup failure
                raise RuntimeError("the API server exited during startup")
            await asyncio.sleep(0.02)
        base_url = f"http://127.0.0.1:{settings.http_port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            yield Api(base_url, settings, app, client)
    finally:
        server.should_exit = True
        await task
        if setup:
            await delete_topics(settings)


@pytest.fixture
def ingest_settings(endpoints: Endpoints, topic_prefix: str, db_schema: str) -> IngestSettings:
    return make_settings(endpoints, topic_prefix, db_schema)


@pytest.fixture
async def api(ingest_settings: IngestSettings) -> AsyncIterator[Api]:
    async for running in serve(ingest_settings):
        yield running


@pytest.fixture(scope="module")
def module_settings_overrides() -> dict[str, Any]:
    """Override in a test module to tune the module's shared server."""
    return {}


@pytest.fixture(scope="module")
async def module_api(
    endpoints: Endpoints, module_settings_overrides: dict[str, Any]
) -> AsyncIterator[Api]:
    async with own_schema(endpoints) as schema:
        settings = make_settings(endpoints, unique_name("t") + ".", schema, **module_settings_overrides)
        async for running in serve(settings):
            yield running
