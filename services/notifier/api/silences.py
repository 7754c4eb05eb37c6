"""`/api/silences`: mute the alerts some matchers pick, for a while (written with the admin scope).

As in Alertmanager: every matcher must hold, regexes are anchored, a missing
label reads as "". A silence must pick something: one whose every matcher
also holds for no labels at all (`foo=~".*"`) would mute every alert, and is
refused. Deleting a silence expires it (ends_at = now); it stays listed.
A miner's key reaches none of this (403): a silence mutes every channel.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from shared.http.auth import Principal, Scope, require_scope
from shared.http.bodies import error_responses, invalid
from shared.http.errors import ApiError
from shared.http.guard import guarded_router

from ..adapters.silence_store import SilenceRecord, SilenceStore, silence_state
from ..domain.matchers import Matcher, MatcherError
from .bodies import MatcherOut, SilenceIn, SilenceOut, SilencesOut, parse_duration_ms

__all__ = ["silences_router"]

_ADMIN = Depends(require_scope(Scope.ADMIN))
_READ = Depends(require_scope(Scope.READ))
SilenceId = Annotated[uuid.UUID, Path(alias="silenceId", description="The silence's id (a UUID)")]


def _out(silence: SilenceRecord, now: datetime) -> SilenceOut:
    return SilenceOut(id=str(silence.id), matchers=[MatcherOut(**m) for m in silence.matchers], starts_at=silence.starts_at,
                      ends_at=silence.ends_at, created_by=silence.created_by, comment=silence.comment,
                      created_at=silence.created_at, state=silence_state(silence, now))


def _not_found(silence_id: uuid.UUID) -> ApiError:
    return ApiError(404, f"no silence {silence_id}", [{"field": "path.silenceId", "message": "not found"}])


def _matchers(body: SilenceIn) -> list[Matcher]:
    details: list[dict[str, str]] = []
    matchers: list[Matcher] = []
    for i, m in enumerate(body.matchers):
        try:
            matchers.append(Matcher.of(m.name, m.value, m.op, f"body.matchers[{i}]"))
        except MatcherError as exc:
            details.append({"field": exc.field, "message": exc.message})
    if details:
        raise ApiError(422, "request is invalid", details)
    if all(m.matches({}) for m in matchers):
        raise invalid("body.matchers", "every matcher holds for an alert without labels: the silence would mute "
                                       "every alert; add one that picks something (alertname=...)")
    return matchers


def _window(body: SilenceIn, now: datetime) -> tuple[datetime, datetime]:
    starts_at = body.starts_at or now
    if body.duration is not None and body.ends_at is not None:
        raise invalid("body.duration", "give ends_at or duration, not both")
    if body.duration is not None:
        try:
            ends_at = starts_at + timedelta(milliseconds=parse_duration_ms(body.duration))
        except ValueError as exc:
            raise invalid("body.duration", str(exc)) from exc
        except OverflowError as exc:
            raise invalid("body.duration", "ends after the year 9999") from exc
    elif body.ends_at is not None:
        ends_at = body.ends_at
    else:
        raise invalid("body.ends_at", "give ends_at or duration")
    if ends_at <= starts_at:
        raise invalid("body.ends_at" if body.ends_at is not None else "body.duration", "must end after starts_at")
    if ends_at <= now:
        raise invalid("body.ends_at" if body.ends_at is not None else "body.duration", "already over")
    return starts_at, ends_at


def silences_router(store: SilenceStore) -> APIRouter:
    router = guarded_router(tags=["silences"])

    @router.post("/api/silences", status_code=201, response_model=SilenceOut,
                 responses=error_responses(400, 401, 403, 413, 422), summary="Create a silence",
                 description="Admin scope. Matched alerts are not sent from starts_at until ends_at; those still "
                             "firing when it ends are sent then. A bad regex is a 422 naming it "
                             "(`body.matchers[0].value`).")
    async def create_silence(body: SilenceIn, principal: Principal = _ADMIN) -> SilenceOut:
        now = datetime.now(UTC)
        matchers = _matchers(body)
        starts_at, ends_at = _window(body, now)
        silence = await store.create([m.as_dict() for m in matchers], starts_at, ends_at,
                                     body.created_by or principal.name, body.comment)
        return _out(silence, now)

    @router.get("/api/silences", response_model=SilencesOut, responses=error_responses(401, 403, 422),
                summary="List silences", description="Read scope. Newest first, at most `limit`.")
    async def list_silences(
        state: Annotated[Literal["active", "pending", "expired"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
        _: Principal = _READ,
    ) -> SilencesOut:
        now = datetime.now(UTC)
        return SilencesOut(silences=[_out(s, now) for s in await store.silences(now, state, limit)])

    @router.get("/api/silences/{silenceId}", response_model=SilenceOut, responses=error_responses(401, 403, 404),
                summary="Get a silence")
    async def get_silence(silence_id: SilenceId, _: Principal = _READ) -> SilenceOut:
        silence = await store.get(silence_id)
        if silence is None:
            raise _not_found(silence_id)
        return _out(silence, datetime.now(UTC))

    @router.delete("/api/silences/{silenceId}", response_model=SilenceOut, responses=error_responses(401, 403, 404),
                   summary="Expire a silence",
                   description="Admin scope. Ends it now (ends_at = now), so it stays on record "
                               "(`state=expired`); one already over is answered as it is.")
    async def expire_silence(silence_id: SilenceId, _: Principal = _ADMIN) -> SilenceOut:
        now = datetime.now(UTC)
        silence = await store.expire(silence_id, now)
        if silence is None:
            raise _not_found(silence_id)
        return _out(silence, now)

    return router
