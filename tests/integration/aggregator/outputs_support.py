"""Fixtures of the output tests (snapshots, exporter, roll-ups, stats liveness): a migrated schema's pool.

Imported by the test modules that use them (not a conftest, so other aggregator
test modules in this package stay unaffected).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from shared.db.migrate import migrate_database
from shared.db.pool import create_pool
from shared.settings import ServiceSettings


@pytest.fixture
async def migrated_pool(db_settings: ServiceSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this test's own schema, migrated (partitions around today included)."""
    await migrate_database(db_settings)
    pool = await create_pool(db_settings)
    try:
        yield pool
    finally:
        await pool.close()


def utc_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
