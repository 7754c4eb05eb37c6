"""The delivery log in PostgreSQL: the authority on what was delivered.

A group notification is stored (`record_flush`) before the group's state
moves on and before the stream commits, under its idempotency key: a flush
replayed after a crash or a rebalance finds the stored one, and the group is
told what that one said. Senders then claim due notifications with a lease
(`claim_due`: FOR UPDATE SKIP LOCKED, so several notifiers never take the
same one), oldest first per group so a group's notices keep their order, and
log every attempt with its outcome (`record_attempt`) in one transaction.
Dead notifications are published to the dead-letter topic from here too
(`undead` / `mark_dead_lettered`: an outbox, so Kafka being away loses none).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

import asyncpg

from ..domain.delivery import Verdict

__all__ = ["Attempt", "DeliveryLog", "DueDelivery", "NewDelivery", "Outcome"]


@dataclass(frozen=True, slots=True)
class NewDelivery:
    idempotency_key: str
    channel_id: int
    group_key: str
    sequence: int
    message: Mapping[str, Any]  # message_to_json
    fingerprints: Sequence[str]
    told: Sequence[str]  # fingerprint@starts_at of the firing alerts it tells of
    alert_ids: Sequence[int]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class DueDelivery:
    id: int
    idempotency_key: str
    channel_id: int
    group_key: str
    message: dict[str, Any]
    attempts: int  # made before this one
    received_at: datetime


class Attempt(Protocol):
    """What one attempt did, as the log keeps it (the senders' SendResult is one)."""

    @property
    def ok(self) -> bool: ...

    @property
    def status_code(self) -> int | None: ...

    @property
    def error(self) -> str | None: ...

    @property
    def latency_ms(self) -> float: ...

    @property
    def refused(self) -> bool: ...

    @property
    def retriable(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt, judged: what the log keeps of it."""

    due: DueDelivery
    channel_type: str
    attempt: Attempt
    verdict: Verdict
    retry_in_s: float


_INSERT: Final = """
INSERT INTO notification_deliveries
    (idempotency_key, channel_id, group_key, sequence, message, fingerprints, told, alert_ids, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (idempotency_key) DO NOTHING
"""

# Oldest first, and only the oldest open notification of each group: a resolved notice never
# overtakes the firing one still being retried.
_CLAIM: Final = """
UPDATE notification_deliveries AS d
SET lease_until = now() + make_interval(secs => $2)
WHERE d.id IN (
    SELECT c.id FROM notification_deliveries AS c
    WHERE c.status IN ('pending', 'retrying') AND c.next_attempt_at <= now()
      AND (c.lease_until IS NULL OR c.lease_until < now())
      AND NOT EXISTS (SELECT 1 FROM notification_deliveries AS e
                      WHERE e.status IN ('pending', 'retrying') AND e.channel_id = c.channel_id
                        AND e.group_key = c.group_key AND e.id < c.id)
    ORDER BY c.id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
RETURNING d.id, d.idempotency_key, d.channel_id, d.group_key, d.message, d.attempts, d.received_at
"""

_ATTEMPT: Final = """
INSERT INTO notifications (delivery_id, channel_id, channel_type, attempt, status, response_code, error, latency_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""

_OUTCOME: Final = """
UPDATE notification_deliveries
SET attempts = $2, status = $3, last_status_code = $4, last_error = $5, lease_until = NULL,
    next_attempt_at = now() + make_interval(secs => $6),
    sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END
WHERE id = $1
"""


class DeliveryLog:
    def __init__(self, pool: asyncpg.Pool, *, timeout_s: float = 10.0) -> None:
        self._pool = pool
        self._timeout_s = timeout_s

    async def record_flushes(self, deliveries: Sequence[NewDelivery]) -> dict[str, frozenset[str]]:
        """Store the notifications whose keys are not stored yet; what each stored one told (by
        key): its own told when it was new, the earlier one's when its flush was a replay."""
        rows = [(d.idempotency_key, d.channel_id, d.group_key, d.sequence, dict(d.message), list(d.fingerprints),
                 list(d.told), list(d.alert_ids), d.received_at) for d in deliveries]
        async with self._pool.acquire(timeout=self._timeout_s) as conn, conn.transaction():
            await conn.executemany(_INSERT, rows, timeout=self._timeout_s)
            stored = await conn.fetch("SELECT idempotency_key, told FROM notification_deliveries"
                                      " WHERE idempotency_key = ANY($1::text[])",
                                      [d.idempotency_key for d in deliveries], timeout=self._timeout_s)
        return {r["idempotency_key"]: frozenset(r["told"]) for r in stored}

    async def claim_due(self, limit: int, lease_s: float) -> list[DueDelivery]:
        rows = await self._pool.fetch(_CLAIM, limit, lease_s, timeout=self._timeout_s)
        return sorted((DueDelivery(r["id"], r["idempotency_key"], r["channel_id"], r["group_key"],
                                   r["message"], r["attempts"], r["received_at"]) for r in rows),
                      key=lambda d: d.id)

    async def next_due_s(self) -> float | None:
        """Seconds until the next open notification is due (0 when one is), None when none is open."""
        value = await self._pool.fetchval(
            "SELECT EXTRACT(EPOCH FROM min(GREATEST(next_attempt_at, COALESCE(lease_until, next_attempt_at)))"
            " - now()) FROM notification_deliveries WHERE status IN ('pending', 'retrying')",
            timeout=self._timeout_s)
        return None if value is None else max(0.0, float(value))

    async def record_attempts(self, outcomes: Sequence[Outcome]) -> None:
        """Each attempt's row and its notification's new state, all in one transaction."""
        if not outcomes:
            return
        attempts, states = [], []
        for o in outcomes:
            number = o.due.attempts + 1
            a = o.attempt
            status = "refused" if a.refused and o.verdict is Verdict.DEAD else o.verdict.value
            state = {Verdict.SENT: "sent", Verdict.RETRY: "retrying", Verdict.DEAD: "dead"}[o.verdict]
            attempts.append((o.due.id, o.due.channel_id, o.channel_type, number, status, a.status_code, a.error,
                             a.latency_ms))
            states.append((o.due.id, number, state, a.status_code, a.error, o.retry_in_s))
        async with self._pool.acquire(timeout=self._timeout_s) as conn, conn.transaction():
            await conn.executemany(_ATTEMPT, attempts, timeout=self._timeout_s)
            await conn.executemany(_OUTCOME, states, timeout=self._timeout_s)

    async def postpone(self, delivery_id: int, wait_s: float) -> None:
        """Not tried (the channel's rate limit): due again later, no attempt counted."""
        await self._pool.execute(
            "UPDATE notification_deliveries SET lease_until = NULL,"
            " next_attempt_at = now() + make_interval(secs => $2) WHERE id = $1",
            delivery_id, wait_s, timeout=self._timeout_s)

    async def undead(self, limit: int) -> list[dict[str, Any]]:
        """Dead notifications not yet on the dead-letter topic, as published there."""
        rows = await self._pool.fetch(
            "SELECT d.id, d.idempotency_key, d.channel_id, c.name AS channel, c.type AS channel_type, d.attempts,"
            " d.last_status_code, d.last_error, d.message, d.created_at FROM notification_deliveries d"
            " LEFT JOIN alert_channels c ON c.id = d.channel_id"
            " WHERE d.status = 'dead' AND d.dead_lettered_at IS NULL ORDER BY d.id LIMIT $1",
            limit, timeout=self._timeout_s)
        return [{**dict(r), "message": r["message"], "created_at": r["created_at"].isoformat()}
                for r in rows]

    async def mark_dead_lettered(self, ids: Sequence[int]) -> None:
        await self._pool.execute(
            "UPDATE notification_deliveries SET dead_lettered_at = now() WHERE id = ANY($1::bigint[])",
            list(ids), timeout=self._timeout_s)

    async def record_test(self, channel_id: int, channel_type: str, message: Mapping[str, Any],
                          attempt: Attempt) -> int:
        """A test notification from the channels API: one delivery, one attempt, never retried
        (nor dead-lettered: the caller has the answer)."""
        ok = attempt.ok
        key = f"test:{channel_id}:{uuid.uuid4().hex}"
        status = "sent" if ok else ("refused" if attempt.refused else "dead")
        async with self._pool.acquire(timeout=self._timeout_s) as conn, conn.transaction():
            delivery_id: int = await conn.fetchval(
                "INSERT INTO notification_deliveries (idempotency_key, channel_id, group_key, sequence, kind,"
                " status, message, fingerprints, attempts, last_status_code, last_error, sent_at,"
                " dead_lettered_at) VALUES ($1, $2, $3, 1, 'test', $4, $5, $6, 1, $7, $8,"
                " CASE WHEN $4 = 'sent' THEN now() END, now()) RETURNING id",
                key, channel_id, str(message.get("group_key", "")), "sent" if ok else "dead", dict(message),
                [str(a.get("fingerprint", "")) for a in message.get("alerts", ())], attempt.status_code,
                attempt.error, timeout=self._timeout_s)
            await conn.execute(_ATTEMPT, delivery_id, channel_id, channel_type, 1, status, attempt.status_code,
                               attempt.error, attempt.latency_ms, timeout=self._timeout_s)
        return delivery_id
