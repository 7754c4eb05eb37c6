"""Database fixtures for the integration tests of shared.db."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.db import connect, migrate_database
from shared.settings import ServiceSettings


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
