"""The attempt log as `GET /api/notifications` reads it: `notifications` (one row per attempt)
with the notification each attempt belongs to (`notification_deliveries`) and its channel.

Newest first, paged by id (`before`): a page is stable however many attempts
are written meanwhile, where an offset would shift under them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

__all__ = ["MAX_LIMIT", "AlertFilter", "NotificationQueries"]

MAX_LIMIT: Final = 1000

_SELECT: Final = """
SELECT n.id, n.delivery_id, d.idempotency_key, n.channel_id, c.name AS channel_name, n.channel_type, n.attempt,
       n.status, n.response_code, n.error, n.latency_ms, n.at, d.fingerprints, d.alert_ids, d.group_key, d.kind
FROM notifications n
JOIN notification_deliveries d ON d.id = n.delivery_id
LEFT JOIN alert_channels c ON c.id = n.channel_id
"""


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """An alert id (the alerter's `alerts.id`) or a fingerprint (the alerter's, or `am-...` from Alertmanager)."""

    alert_id: int | None = None
    fingerprint: str | None = None


class NotificationQueries:
    def __init__(self, pool: asyncpg.Pool, *, timeout_s: float = 10.0) -> None:
        self._pool = pool
        self._timeout_s = timeout_s

    async def attempts(self, *, alert: AlertFilter | None = None, channel_id: int | None = None,
                       status: str | None = None, before: int | None = None, limit: int = 100,
                       owner: str | None = None) -> list[dict[str, Any]]:
        """Attempts, newest first; with `owner`, only those of that miner's channels."""
        where: list[str] = []
        args: list[Any] = []

        def condition(sql: str, value: Any) -> None:
            args.append(value)
            where.append(sql.format(f"${len(args)}"))

        # Containment (@>) rather than = ANY: it is what the GIN indexes of 0011 serve.
        if alert is not None and alert.alert_id is not None:
            condition("d.alert_ids @> ARRAY[{}::bigint]", alert.alert_id)
        if alert is not None and alert.fingerprint is not None:
            condition("d.fingerprints @> ARRAY[{}::text]", alert.fingerprint)
        if channel_id is not None:
            condition("n.channel_id = {}", channel_id)
        if status is not None:
            condition("n.status = {}", status)
        if before is not None:
            condition("n.id < {}", before)
        if owner is not None:
            condition("c.miner = {}", owner)
        args.append(max(1, min(limit, MAX_LIMIT)))
        sql = f"{_SELECT} {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY n.id DESC LIMIT ${len(args)}"
        rows = await self._pool.fetch(sql, *args, timeout=self._timeout_s)
        return [_row(r) for r in rows]


def _row(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["fingerprints"] = list(row["fingerprints"])
    out["alert_ids"] = list(row["alert_ids"])
    return out
