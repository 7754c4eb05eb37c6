"""Fixtures of the integration tests: database connections, and private Kafka and
PostgreSQL nodes for the tests that stop and restart one mid-test."""

from __future__ import annotations

import random
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chimera.devstack.config import PROJECT_ROOT, DevStackConfig
from chimera.devstack.kafka import KafkaNode
from chimera.devstack.postgres import PostgresNode
from chimera.devstack.processes import port_free
from shared.db import connect, migrate_database
from shared.settings import ServiceSettings


def free_port() -> int:
    """A port no one holds, BELOW the kernel's ephemeral range: a server stopped and started
    again mid-test (the outage tests) must not find its port taken meanwhile by some
    client connection's local port, which the kernel draws from that range."""
    low, _ = _ephemeral_range()
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(10_000, max(low, 10_001))
        if port_free(port):
            return port
    with socket.socket() as probe:  # fall back to whatever the kernel gives
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default


def _private_config() -> DevStackConfig:
    # Under the project folder (like tests/integration/test_devstack.py): the postgres
    # system user must reach the data directory when the tests run as root.
    state = PROJECT_ROOT / ".chimera" / "test-stacks" / uuid.uuid4().hex[:8]
    return replace(
        DevStackConfig.from_env(), state_dir=state, kafka_port=free_port(),
        kafka_controller_port=free_port(), postgres_port=free_port(), kafka_heap="512m",
    )


def _private(node_class: type[KafkaNode | PostgresNode]) -> Iterator[Any]:
    config = _private_config()
    node = node_class(config)
    node.up()
    try:
        yield node
    finally:
        node.down()
        shutil.rmtree(config.state_dir, ignore_errors=True)


@pytest.fixture
def private_kafka() -> Iterator[KafkaNode]:
    """A single-node broker of this test's own (the dev stack's code, free ports)."""
    yield from _private(KafkaNode)


@pytest.fixture
def private_postgres() -> Iterator[PostgresNode]:
    """A PostgreSQL server of this test's own (the dev stack's code, a free port)."""
    yield from _private(PostgresNode)


@pytest.fixture
async def db_conn(db_settings: ServiceSettings) -> AsyncIterator[asyncpg.Connection]:
    """A connection to this test's (empty, unmigrated) schema."""
    conn = await connect(db_settings)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def migrated_conn(db_settings: ServiceSettings) -> AsyncIterator[asyncpg.Connection]:
    """A connection to this test's schema after `chimera migrate` (partitions ahead included)."""
    await migrate_database(db_settings)
    conn = await connect(db_settings)
    try:
        yield conn
    finally:
        await conn.close()
