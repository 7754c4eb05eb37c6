"""Alerts in PostgreSQL: transitions applied once, and the outbox that feeds `chimera.alerts`.

A transition changes its `alerts` row and, for firing and resolved ones that
someone must hear of, inserts its `alert_events` row, in one transaction.
Both are idempotent on the transition's identity (fingerprint, status,
starts_at: migration 0010), so a transition replayed after a crash changes
nothing and publishes nothing new. The relay (relay.py) publishes the
outbox; the row is marked only after Kafka acknowledged it, so a crash in
between publishes the identical record again, never a different one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
import orjson

from ..domain.lifecycle import GroupState, Transition

__all__ = ["EVENT_SQL", "AlertChange", "AlertStore", "alert_record", "alert_value", "to_datetime", "write_groups"]

def to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert_value(*, fingerprint: str, status: str, starts_at: datetime, at: datetime | None,
                labels: Mapping[str, str], annotations: Mapping[str, str], name: str, severity: str,
                value: float | None, threshold: float | None, rule_id: int | None, alert_id: int | None,
                reason: str | None) -> dict[str, Any]:
    """The value published on `chimera.alerts` (schema in docs/alerter.md), whoever wrote the
    transition (the alerter, or the API for an alert raised or resolved by hand). `at`: when
    it fired (firing) or ended (resolved)."""
    firing = status == "firing"
    return {
        "fingerprint": fingerprint, "status": "firing" if firing else "resolved",
        "starts_at": _iso(starts_at), "ends_at": None if firing else _iso(at), "fired_at": _iso(at) if firing else None,
        "labels": dict(labels), "annotations": dict(annotations), "severity": severity, "name": name,
        "value": value, "threshold": threshold, "rule_id": rule_id, "alert_id": alert_id, "reason": reason or None,
    }


@dataclass(frozen=True, slots=True)
class AlertChange:
    """A transition with what the alert row and the published record say about it."""

    transition: Transition
    name: str
    severity: str
    annotations: Mapping[str, str]


def alert_record(change: AlertChange, alert_id: int | None) -> dict[str, Any]:
    t = change.transition
    return alert_value(
        fingerprint=t.fingerprint, status=t.status, starts_at=to_datetime(t.starts_at_ms), at=to_datetime(t.at_ms),
        labels=t.labels, annotations=change.annotations, name=change.name, severity=change.severity,
        value=t.value, threshold=t.limit, rule_id=t.rule_id, alert_id=alert_id, reason=t.reason)


_PENDING: Final = """
INSERT INTO alerts (rule_id, name, severity, status, labels, annotations, fingerprint, value, limit_value,
                    started_at)
VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9)
ON CONFLICT DO NOTHING
"""

_FIRING: Final = """
INSERT INTO alerts (rule_id, name, severity, status, labels, annotations, fingerprint, value, limit_value,
                    started_at, fired_at)
VALUES ($1, $2, $3, 'firing', $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (fingerprint, started_at) DO UPDATE
SET status = 'firing', fired_at = EXCLUDED.fired_at, value = EXCLUDED.value,
    limit_value = EXCLUDED.limit_value, annotations = EXCLUDED.annotations
WHERE alerts.status = 'pending'
"""

_RESOLVED: Final = """
UPDATE alerts SET status = 'resolved', resolved_at = $3, end_reason = $4, annotations = $5,
                  value = coalesce($6, value)
WHERE fingerprint = $1 AND started_at = $2 AND status <> 'resolved'
"""

_ALERT_ID: Final = "SELECT id FROM alerts WHERE fingerprint = $1 AND started_at = $2"

EVENT_SQL: Final = """
INSERT INTO alert_events (alert_id, fingerprint, status, starts_at, at, payload)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (fingerprint, status, starts_at) DO NOTHING
"""


class AlertStore:
    def __init__(self, pool: asyncpg.Pool, *, timeout_s: float = 10.0) -> None:
        self._pool = pool
        self._timeout_s = timeout_s

    async def apply(self, changes: Sequence[AlertChange]) -> int:
        """Apply the transitions in order, in one transaction; the events written for the
        relay. Raises asyncpg/OSError errors (nothing applied) for the caller to retry."""
        if not changes:
            return 0
        published = 0
        async with self._pool.acquire(timeout=self._timeout_s) as conn, conn.transaction():
            for change in changes:
                published += await self._apply_one(conn, change)
        return published

    async def _apply_one(self, conn: asyncpg.Connection, change: AlertChange) -> int:
        t = change.transition
        starts = to_datetime(t.starts_at_ms)
        labels, notes = dict(t.labels), dict(change.annotations)
        if t.status == "pending":
            await conn.execute(_PENDING, t.rule_id, change.name, change.severity, labels, notes, t.fingerprint,
                               t.value, t.limit, starts, timeout=self._timeout_s)
            return 0
        if t.status == "firing":
            await conn.execute(_FIRING, t.rule_id, change.name, change.severity, labels, notes, t.fingerprint,
                               t.value, t.limit, starts, to_datetime(t.at_ms), timeout=self._timeout_s)
        else:
            await conn.execute(_RESOLVED, t.fingerprint, starts, to_datetime(t.at_ms), t.reason or None, notes,
                               t.value, timeout=self._timeout_s)
            if not t.was_firing:
                return 0
        alert_id = await conn.fetchval(_ALERT_ID, t.fingerprint, starts, timeout=self._timeout_s)
        status = await conn.execute(EVENT_SQL, alert_id, t.fingerprint, "firing" if t.status == "firing" else "resolved",
                                    starts, to_datetime(t.at_ms), alert_record(change, alert_id),
                                    timeout=self._timeout_s)
        return 1 if status.endswith(" 1") else 0


_GROUPS: Final = """
INSERT INTO alert_groups (fingerprint, rule_id, labels, status, value, limit_value, series, series_holding,
                          starts_at, updated_at)
SELECT u.fingerprint, u.rule_id, u.labels::jsonb, u.status, u.value, u.limit_value, u.series, u.holding,
       u.starts_at, now()
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::int[], $8::int[],
            $9::timestamptz[]) AS u(fingerprint, rule_id, labels, status, value, limit_value, series, holding,
                                    starts_at)
ON CONFLICT (fingerprint) DO UPDATE
SET rule_id = EXCLUDED.rule_id, labels = EXCLUDED.labels, status = EXCLUDED.status, value = EXCLUDED.value,
    limit_value = EXCLUDED.limit_value, series = EXCLUDED.series, series_holding = EXCLUDED.series_holding,
    starts_at = EXCLUDED.starts_at, updated_at = now()
"""


async def write_groups(pool: asyncpg.Pool, states: Sequence[GroupState], *, timeout_s: float = 10.0) -> None:
    """The groups' current state, for the API (a view: losing a write loses nothing)."""
    if not states:
        return
    cols: tuple[list[Any], ...] = tuple([] for _ in range(9))
    for s in sorted(states, key=lambda s: s.fingerprint):  # one lock order for every writer
        holding = sum(1 for series in s.series.values() if series.holds)
        value, limit = s.value, s.limit
        if s.status == "inactive" and s.last is not None:  # nothing holds: show the newest reading
            value, limit = s.last.value, None
        for col, value in zip(cols, (s.fingerprint, s.rule_id, orjson.dumps(s.labels).decode(), s.status, value,
                                     limit, len(s.series), holding,
                                     to_datetime(s.starts_at_ms) if s.starts_at_ms is not None else None)):
            col.append(value)
    await pool.execute(_GROUPS, *cols, timeout=timeout_s)
