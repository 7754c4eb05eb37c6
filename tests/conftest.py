"""Fixtures for the real Kafka broker and PostgreSQL.

Where they come from, in order: `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL`
when set; testcontainers when a Docker engine answers; otherwise the local
stack of `chimera dev up` (started here if it is not running). Each test gets
its own topic prefix and its own PostgreSQL schema, so tests never see each
other's data.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import pytest

from shared.db.migrate import migrate_database
from shared.db.pool import create_pool
from shared.settings import ServiceSettings


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap_servers: str
    database_url: str


def _docker_answers() -> bool:
    try:
        import docker  # testcontainers' own dependency

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no engine here"
        return False


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    database = os.environ.get("DATABASE_URL")
    if kafka and database:
        yield Endpoints(kafka, database)
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with KafkaContainer().with_kraft() as kc, PostgresContainer("postgres:15") as pc:
            url = pc.get_connection_url(driver=None)
            yield Endpoints(kafka or kc.get_bootstrap_server(), database or url)
        return
    from chimera.devstack import stack

    running = stack.ensure_up()
    yield Endpoints(kafka or running.kafka_bootstrap_servers, database or running.database_url)


def unique_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture
def topic_prefix() -> str:
    return unique_name("t") + "."


@contextlib.asynccontextmanager
async def own_schema(endpoints: Endpoints) -> AsyncIterator[str]:
    """A fresh PostgreSQL schema, dropped with everything in it afterwards."""
    schema = unique_name("t_")
    conn = await asyncpg.connect(endpoints.database_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        yield schema
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def db_schema(endpoints: Endpoints) -> AsyncIterator[str]:
    async with own_schema(endpoints) as schema:
        yield schema


@pytest.fixture
def kafka_settings(endpoints: Endpoints, topic_prefix: str) -> ServiceSettings:
    """Settings pointing at the broker with this test's own topic prefix (few partitions)."""
    return ServiceSettings(
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
        kafka_topic_prefix=topic_prefix,
        kafka_topic_partitions=3,
        database_url=endpoints.database_url,
    )


@pytest.fixture
def db_settings(endpoints: Endpoints, db_schema: str) -> ServiceSettings:
    """Settings pointing at PostgreSQL with this test's own schema."""
    return ServiceSettings(
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
        database_url=endpoints.database_url,
        database_schema=db_schema,
    )


@pytest.fixture
async def migrated_pool(db_settings: ServiceSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this test's own schema after `chimera migrate` (partitions around today included)."""
    await migrate_database(db_settings)
    pool = await create_pool(db_settings)
    try:
        yield pool
    finally:
        await pool.close()
