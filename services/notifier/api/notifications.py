"""`GET /api/notifications`: every attempt to deliver, newest first (read scope).

A `miner:<name>` key sees the attempts of its own miner's channels only.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Query

from shared.http.auth import Principal, Scope, require_scope
from shared.http.bodies import error_responses, invalid
from shared.http.guard import guarded_router

from ..adapters.notification_queries import MAX_LIMIT, AlertFilter, NotificationQueries
from .bodies import NotificationOut, NotificationsOut

__all__ = ["notifications_router"]

_READ = Depends(require_scope(Scope.READ, miner=True))
_MAX_ID: Final = 2**63 - 1


def alert_filter(alert: str | None) -> AlertFilter | None:
    """Digits: an alert id; anything else: a fingerprint."""
    if alert is None:
        return None
    if alert.isascii() and alert.isdigit():
        alert_id = int(alert)
        if not 1 <= alert_id <= _MAX_ID:
            raise invalid("query.alert", f"an alert id is 1 to {_MAX_ID}")
        return AlertFilter(alert_id=alert_id)
    return AlertFilter(fingerprint=alert)


def notifications_router(queries: NotificationQueries) -> APIRouter:
    router = guarded_router(tags=["notifications"])

    @router.get("/api/notifications", response_model=NotificationsOut, responses=error_responses(401, 403, 422),
                summary="The delivery attempts",
                description="Read scope. One row per attempt to deliver a notification (and per test), newest "
                            "first. Page with `before` = the last page's `next_before`. A `miner:<name>` key sees "
                            "its own miner's channels' attempts only.")
    async def list_notifications(
        # Fingerprints are hex (the alerter's) or "am-" and Alertmanager's [0-9A-Za-z._:-]: anything
        # else names no alert (and a NUL would reach PostgreSQL, which refuses it).
        alert: Annotated[str | None, Query(min_length=1, max_length=200, pattern=r"^[0-9A-Za-z._:-]+$",
                                           description="An alert id (digits) or an alert fingerprint")] = None,
        channel: Annotated[int | None, Query(ge=1, le=_MAX_ID, description="A channel's id")] = None,
        status: Literal["sent", "failed", "dead", "refused"] | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        before: Annotated[int | None, Query(ge=1, le=_MAX_ID, description="Attempts with a smaller id")] = None,
        principal: Principal = _READ,
    ) -> NotificationsOut:
        rows = await queries.attempts(alert=alert_filter(alert), channel_id=channel, status=status, before=before,
                                      limit=limit, owner=principal.miner)
        return NotificationsOut(notifications=[NotificationOut(**r) for r in rows],
                                next_before=rows[-1]["id"] if len(rows) == limit else None)

    return router
