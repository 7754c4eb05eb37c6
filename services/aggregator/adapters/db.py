"""PostgreSQL connections for one operation each, their failures classified as StoreError."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

import asyncpg

from shared.db.errors import DATABASE_ERRORS, database_unavailable

from ..errors import StoreError

__all__ = ["db_connection", "store_error"]


# Besides a database that is away (shared/db/errors.py), SQLSTATE classes a retry
# cures: 40 rollback (serialization, deadlock), 55 object not in prerequisite
# state (lock not available).
_RETRY_CURES: Final = frozenset({"40", "55"})


def store_error(exc: BaseException, operation: str, partitions: tuple[int, ...] = ()) -> StoreError:
    """Classify a failure raised by asyncpg (or the socket under it)."""
    sqlstate = getattr(exc, "sqlstate", None) if isinstance(exc, asyncpg.PostgresError) else None
    retriable = database_unavailable(exc) or (isinstance(sqlstate, str) and sqlstate[:2] in _RETRY_CURES)
    return StoreError(
        f"{operation} failed: {type(exc).__name__}: {exc}",
        retriable=retriable,
        operation=operation,
        sqlstate=sqlstate if isinstance(sqlstate, str) else None,
        partitions=partitions,
        cause=exc,
    )


@contextlib.asynccontextmanager
async def db_connection(
    pool: asyncpg.Pool, operation: str, *, timeout_s: float, partitions: tuple[int, ...] = ()
) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection for one operation, bounded in time; failures become StoreError.

    A connection that saw any failure is terminated rather than handed back: after
    a server restart or a cut in mid-protocol its state cannot be trusted."""
    try:
        async with asyncio.timeout(timeout_s):
            conn = await pool.acquire()
            try:
                yield conn
            except BaseException:
                conn.terminate()
                raise
            finally:
                await pool.release(conn)
    except DATABASE_ERRORS as exc:
        raise store_error(exc, operation, partitions) from exc
