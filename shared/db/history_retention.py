"""Retention of the notifier's delivery log, which is not partitioned.

Deliveries are rows of mixed age that stay open while they are retried, so they
cannot go by whole partitions: finished ones (sent, or dead and already
dead-lettered) older than the retention are deleted with their attempts
(`notifications`, ON DELETE CASCADE), a bounded number of rows per statement so
the dispatcher's claims never wait behind one long delete. A resolved alert's
record in `notifier_alerts` only served inhibition while it fired; a firing one
is never deleted, however old.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import asyncpg

from shared.db.pool import connect
from shared.settings import ServiceSettings

__all__ = ["HistoryPruned", "prune_history", "run_history_retention"]

_DELIVERIES: Final = """
WITH old AS (
    SELECT id FROM notification_deliveries
    WHERE created_at < $1 AND (status = 'sent' OR (status = 'dead' AND dead_lettered_at IS NOT NULL))
    LIMIT $2
)
DELETE FROM notification_deliveries AS d USING old WHERE d.id = old.id
"""

_RESOLVED_ALERTS: Final = """
WITH old AS (
    SELECT fingerprint FROM notifier_alerts WHERE status = 'resolved' AND updated_at < $1 LIMIT $2
)
DELETE FROM notifier_alerts AS a USING old WHERE a.fingerprint = old.fingerprint
"""


@dataclass(frozen=True)
class HistoryPruned:
    deliveries: int
    resolved_alerts: int


async def _delete_in_batches(conn: asyncpg.Connection, sql: str, before: datetime, batch_rows: int) -> int:
    deleted = 0
    while True:
        status = await conn.execute(sql, before, batch_rows)  # "DELETE <n>"
        count = int(status.rsplit(" ", 1)[-1])
        deleted += count
        if count < batch_rows:
            return deleted


async def prune_history(conn: asyncpg.Connection, *, notifications_days: int, now: datetime | None = None,
                        batch_rows: int = 10_000) -> HistoryPruned:
    """Delete what is finished and older than `notifications_days`; each batch commits on its own."""
    if notifications_days < 1:
        raise ValueError(f"notifications_days must be at least 1, got {notifications_days}")
    before = (now or datetime.now(UTC)) - timedelta(days=notifications_days)
    return HistoryPruned(
        deliveries=await _delete_in_batches(conn, _DELIVERIES, before, batch_rows),
        resolved_alerts=await _delete_in_batches(conn, _RESOLVED_ALERTS, before, batch_rows),
    )


async def run_history_retention(settings: ServiceSettings) -> HistoryPruned:
    """`chimera retention`'s second half, with the settings' retention."""
    conn = await connect(settings)
    try:
        return await prune_history(conn, notifications_days=settings.retention_notifications_days)
    finally:
        await conn.close()
