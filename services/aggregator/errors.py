"""Errors of the aggregator's adapters: data about what failed, and whether retrying can help.

Callers decide on `retriable` (and the fields), never on message text.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

import asyncpg

from shared.db.errors import DATABASE_ERRORS, database_unavailable

__all__ = ["AggregatorError", "Backoff", "StoreError", "db_connection", "store_error"]


# Besides a database that is away (shared/db/errors.py), SQLSTATE classes a retry
# cures: 40 rollback (serialization, deadlock), 55 object not in prerequisite
# state (lock not available).
_RETRY_CURES: Final = frozenset({"40", "55"})


class AggregatorError(Exception):
    def __init__(self, message: str, *, retriable: bool, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.cause = cause


class StoreError(AggregatorError):
    """A PostgreSQL operation failed. `operation` names it, `sqlstate` is the server's code
    (None for connection-level failures), `partitions` the input partitions it concerned."""

    def __init__(
        self,
        message: str,
        *,
        retriable: bool,
        operation: str,
        sqlstate: str | None = None,
        partitions: tuple[int, ...] = (),
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message, retriable=retriable, cause=cause)
        self.operation = operation
        self.sqlstate = sqlstate
        self.partitions = partitions


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


class Backoff:
    """Doubling delays between retries, capped; `reset()` after a success."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self._initial_s, self._max_s = initial_s, max_s
        self._next_s = initial_s

    def next(self) -> float:
        delay, self._next_s = self._next_s, min(self._next_s * 2, self._max_s)
        return delay

    def reset(self) -> None:
        self._next_s = self._initial_s
