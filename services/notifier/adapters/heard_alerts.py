"""`notifier_alerts`: the latest record of every alert the notifier heard of.

Written before the record's offset is committed; the firing ones are the
sources inhibition rules look at, whichever worker holds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import asyncpg

from ..domain.message_group import AlertView, parse_time

__all__ = ["HeardAlerts"]

# An older record (a replay, or a resolution overtaken by the alert firing anew) changes nothing.
_UPSERT: Final = """
INSERT INTO notifier_alerts (fingerprint, status, labels, starts_at, ends_at, updated_at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (fingerprint) DO UPDATE
SET status = EXCLUDED.status, labels = EXCLUDED.labels, starts_at = EXCLUDED.starts_at,
    ends_at = EXCLUDED.ends_at, updated_at = now()
WHERE notifier_alerts.starts_at < EXCLUDED.starts_at
   OR (notifier_alerts.starts_at = EXCLUDED.starts_at AND notifier_alerts.status = 'firing')
"""


class HeardAlerts:
    def __init__(self, pool: asyncpg.Pool, *, timeout_s: float = 10.0) -> None:
        self._pool = pool
        self._timeout_s = timeout_s

    async def note(self, alerts: Sequence[AlertView]) -> None:
        """In one transaction: a commit (and its WAL flush) per batch of records, not per record."""
        rows = [(a.fingerprint, a.status, dict(a.labels), parse_time(a.starts_at), parse_time(a.ends_at))
                for a in alerts]
        if rows:
            async with self._pool.acquire(timeout=self._timeout_s) as conn, conn.transaction():
                await conn.executemany(_UPSERT, rows, timeout=self._timeout_s)

    async def firing(self) -> list[Mapping[str, str]]:
        rows = await self._pool.fetch("SELECT labels FROM notifier_alerts WHERE status = 'firing'",
                                      timeout=self._timeout_s)
        return [r["labels"] for r in rows]  # jsonb arrives decoded (shared/db/pool.py)
