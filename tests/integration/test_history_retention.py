"""Retention of the notifier's delivery log against a real PostgreSQL: only finished
deliveries and resolved alerts past the retention go; open ones stay however old."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.db.history_retention import prune_history

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
OLD = NOW - timedelta(days=91)
RECENT = NOW - timedelta(days=89)


async def _delivery(conn: asyncpg.Connection, key: str, status: str, created_at: datetime,
                    dead_lettered: bool = False) -> int:
    delivery_id: int = await conn.fetchval(
        "INSERT INTO notification_deliveries (idempotency_key, group_key, sequence, status, message, "
        "created_at, sent_at, dead_lettered_at) VALUES ($1, 'g', 0, $2, $3::jsonb, $4, $5, $6) RETURNING id",
        key, status, {"alerts": []}, created_at,
        created_at if status == "sent" else None, created_at if dead_lettered else None)
    await conn.execute(
        "INSERT INTO notifications (delivery_id, channel_type, attempt, status, latency_ms, at) "
        "VALUES ($1, 'webhook', 1, $2, 1.0, $3)",
        delivery_id, "sent" if status == "sent" else "failed", created_at)
    return delivery_id


async def _alert(conn: asyncpg.Connection, fingerprint: str, status: str, updated_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO notifier_alerts (fingerprint, status, labels, starts_at, updated_at) "
        "VALUES ($1, $2, '{}'::jsonb, $3, $3)", fingerprint, status, updated_at)


async def test_only_finished_history_past_the_retention_goes(migrated_conn: asyncpg.Connection) -> None:
    conn = migrated_conn
    gone = [await _delivery(conn, "sent-old", "sent", OLD),
            await _delivery(conn, "dead-old-lettered", "dead", OLD, dead_lettered=True)]
    kept = [await _delivery(conn, "sent-recent", "sent", RECENT),
            await _delivery(conn, "dead-old-not-lettered-yet", "dead", OLD),  # still to publish
            await _delivery(conn, "retrying-old", "retrying", OLD),
            await _delivery(conn, "pending-old", "pending", OLD)]
    await _alert(conn, "resolved-old", "resolved", OLD)
    await _alert(conn, "resolved-recent", "resolved", RECENT)
    await _alert(conn, "firing-old", "firing", OLD)

    pruned = await prune_history(conn, notifications_days=90, now=NOW, batch_rows=1)

    assert (pruned.deliveries, pruned.resolved_alerts) == (2, 1)
    left = {r["id"] for r in await conn.fetch("SELECT id FROM notification_deliveries")}
    assert left == set(kept)
    attempts = {r["delivery_id"] for r in await conn.fetch("SELECT delivery_id FROM notifications")}
    assert attempts == set(kept)  # the attempts went with their deliveries
    assert not attempts & set(gone)
    fingerprints = {r["fingerprint"] for r in await conn.fetch("SELECT fingerprint FROM notifier_alerts")}
    assert fingerprints == {"resolved-recent", "firing-old"}
    # Nothing more to do: a second pass deletes nothing.
    assert await prune_history(conn, notifications_days=90, now=NOW) == type(pruned)(0, 0)


async def test_retention_must_be_a_day_or_more(migrated_conn: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        await prune_history(migrated_conn, notifications_days=0)
