"""The API's side of alerts in PostgreSQL: reading them, raising one by hand, resolving one.

An alert raised or resolved here writes its `alert_events` row in the same
transaction, like the alerter's own transitions, so the alerter's relay
publishes it on `chimera.alerts` (within its relay interval).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import asyncpg

from shared.labels import label_set_key

from .alert_store import EVENT_SQL, alert_value

__all__ = ["AlertQueries", "manual_fingerprint"]

_COLUMNS: Final = """id, rule_id, name, severity, status, labels, annotations, fingerprint, value,
limit_value AS threshold, started_at AS starts_at, fired_at, resolved_at AS ends_at, end_reason, updated_at"""


def manual_fingerprint(name: str, labels: Mapping[str, str]) -> str:
    """Raised by hand: the same name and labels are the same alert (as in Alertmanager)."""
    return label_set_key(f"manual:{name}", labels)


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    """The chimera.alerts value of a stored alert."""
    firing = row["status"] != "resolved"
    return alert_value(
        fingerprint=row["fingerprint"], status="firing" if firing else "resolved", starts_at=row["starts_at"],
        at=row["fired_at"] if firing else row["ends_at"], labels=row["labels"], annotations=row["annotations"],
        name=row["name"], severity=row["severity"], value=row["value"], threshold=row["threshold"],
        rule_id=row["rule_id"], alert_id=row["id"], reason=row["end_reason"])


class AlertQueries:
    def __init__(self, pool: asyncpg.Pool, *, timeout_s: float = 10.0) -> None:
        self._pool = pool
        self._timeout_s = timeout_s

    async def list(self, *, status: str | None, severity: str | None, rule_id: int | None, miner: str | None,
                   limit: int, offset: int) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            f"""SELECT {_COLUMNS} FROM alerts
                WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR severity = $2)
                  AND ($3::bigint IS NULL OR rule_id = $3) AND ($4::text IS NULL OR labels->>'miner' = $4)
                ORDER BY started_at DESC, id DESC LIMIT $5 OFFSET $6""",
            status, severity, rule_id, miner, limit, offset, timeout=self._timeout_s)
        return [dict(r) for r in rows]

    async def get(self, alert_id: int, *, miner: str | None = None) -> dict[str, Any] | None:
        """The alert; with `miner`, only if it is that miner's (`labels.miner`), else None as for no alert."""
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM alerts WHERE id = $1 AND ($2::text IS NULL OR labels->>'miner' = $2)",
            alert_id, miner, timeout=self._timeout_s)
        return dict(row) if row is not None else None

    async def raise_alert(self, name: str, severity: str, labels: Mapping[str, str],
                          annotations: Mapping[str, str]) -> tuple[dict[str, Any], bool]:
        """(the alert, created): an open alert with the same name and labels is answered as is."""
        fingerprint = manual_fingerprint(name, labels)
        async with self._pool.acquire(timeout=self._timeout_s) as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""INSERT INTO alerts (name, severity, status, labels, annotations, fingerprint, started_at, fired_at)
                    VALUES ($1, $2, 'firing', $3, $4, $5, now(), now())
                    ON CONFLICT DO NOTHING RETURNING {_COLUMNS}""",
                name, severity, {**labels, "alertname": name, "severity": severity}, dict(annotations), fingerprint,
                timeout=self._timeout_s)
            if row is None:
                existing = await conn.fetchrow(
                    f"SELECT {_COLUMNS} FROM alerts WHERE fingerprint = $1 AND status <> 'resolved'", fingerprint,
                    timeout=self._timeout_s)
                if existing is not None:
                    return dict(existing), False
                raise asyncpg.UniqueViolationError("an alert with this fingerprint started at the same instant")
            await conn.execute(EVENT_SQL, row["id"], fingerprint, "firing", row["starts_at"], row["fired_at"],
                               _record(row), timeout=self._timeout_s)
        return dict(row), True

    async def resolve(self, alert_id: int) -> dict[str, Any] | None:
        """Resolve an open alert by hand (a resolved one is answered as it is); None: no such alert."""
        async with self._pool.acquire(timeout=self._timeout_s) as conn, conn.transaction():
            before = await conn.fetchrow("SELECT status FROM alerts WHERE id = $1 FOR UPDATE", alert_id,
                                         timeout=self._timeout_s)
            if before is None:
                return None
            row = await conn.fetchrow(
                f"""UPDATE alerts SET status = 'resolved', resolved_at = now(),
                           end_reason = coalesce(end_reason, 'resolved by hand')
                    WHERE id = $1 AND status <> 'resolved' RETURNING {_COLUMNS}""", alert_id,
                timeout=self._timeout_s)
            if row is None:
                return await self.get(alert_id)
            if before["status"] == "firing":
                await conn.execute(EVENT_SQL, alert_id, row["fingerprint"], "resolved", row["starts_at"], row["ends_at"],
                                   _record(row), timeout=self._timeout_s)
            return dict(row)

    async def groups(self, rule_ids: Sequence[int], limit: int) -> dict[int, list[dict[str, Any]]]:
        rows = await self._pool.fetch(
            """SELECT * FROM (
                   SELECT g.*, row_number() OVER (PARTITION BY rule_id ORDER BY CASE status WHEN 'firing' THEN 0
                       WHEN 'pending' THEN 1 ELSE 2 END, updated_at DESC) AS n
                   FROM alert_groups g WHERE rule_id = ANY($1::bigint[])) ranked
               WHERE n <= $2""", list(rule_ids), limit, timeout=self._timeout_s)
        out: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            out.setdefault(r["rule_id"], []).append(dict(r))
        return out
