"""Silences in PostgreSQL (`silences`, migration 0003).

A silence is never deleted: expiring one sets its `ends_at` to now, so what
was muted, when and by whom stays on record (`GET /api/silences?state=expired`).
A silence's state is read against the caller's clock: pending before
`starts_at`, active until `ends_at`, expired after.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import asyncpg

from ..domain.matchers import MatcherError, parse_matchers
from ..domain.routing import Silence

__all__ = ["SilenceRecord", "SilenceState", "SilenceStore", "silence_state"]

log = logging.getLogger(__name__)

SilenceState = Literal["active", "pending", "expired"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS: Final = "id, matchers, starts_at, ends_at, created_by, comment, created_at"
_WHERE_STATE: Final[Mapping[str, str]] = {
    "active": "starts_at <= $1 AND ends_at > $1",
    "pending": "starts_at > $1",
    "expired": "ends_at <= $1",
}
# ends_at must stay after starts_at (0003's CHECK): a pending silence expired before it began
# is moved to have begun an instant before it ended, which is still before anything it could mute.
_EXPIRE: Final = f"""
UPDATE silences SET ends_at = $2, starts_at = least(starts_at, $2 - interval '1 microsecond')
WHERE id = $1 AND ends_at > $2
RETURNING {_COLUMNS}
"""


@dataclass(frozen=True, slots=True)
class SilenceRecord:
    id: uuid.UUID
    matchers: list[dict[str, str]]  # [{"name", "op", "value"}]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime


def silence_state(silence: SilenceRecord, now: datetime) -> SilenceState:
    if now < silence.starts_at:
        return "pending"
    return "active" if now < silence.ends_at else "expired"


def _record(row: Mapping[str, Any]) -> SilenceRecord:
    return SilenceRecord(id=row["id"], matchers=[dict(m) for m in row["matchers"]], starts_at=row["starts_at"],
                         ends_at=row["ends_at"], created_by=row["created_by"], comment=row["comment"],
                         created_at=row["created_at"])


def _ms(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(milliseconds=1)


class SilenceStore:
    def __init__(self, pool: asyncpg.Pool, *, timeout_s: float = 10.0) -> None:
        self._pool = pool
        self._timeout_s = timeout_s

    async def create(self, matchers: Sequence[Mapping[str, str]], starts_at: datetime, ends_at: datetime,
                     created_by: str, comment: str = "") -> SilenceRecord:
        row = await self._pool.fetchrow(
            f"INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment) VALUES ($1, $2, $3, $4, $5)"
            f" RETURNING {_COLUMNS}",
            [dict(m) for m in matchers], starts_at, ends_at, created_by, comment, timeout=self._timeout_s)
        assert row is not None  # INSERT ... RETURNING always returns its row
        return _record(row)

    async def get(self, silence_id: uuid.UUID) -> SilenceRecord | None:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM silences WHERE id = $1", silence_id,
                                        timeout=self._timeout_s)
        return _record(row) if row is not None else None

    async def silences(self, now: datetime, state: SilenceState | None = None,
                       limit: int = 1000) -> list[SilenceRecord]:
        """Newest first; `state` as of `now`."""
        if state is None:
            rows = await self._pool.fetch(f"SELECT {_COLUMNS} FROM silences ORDER BY created_at DESC, id LIMIT $1",
                                          limit, timeout=self._timeout_s)
        else:
            rows = await self._pool.fetch(
                f"SELECT {_COLUMNS} FROM silences WHERE {_WHERE_STATE[state]} ORDER BY created_at DESC, id"
                " LIMIT $2", now, limit, timeout=self._timeout_s)
        return [_record(r) for r in rows]

    async def expire(self, silence_id: uuid.UUID, now: datetime) -> SilenceRecord | None:
        """Ends the silence at `now`; an expired one is left as it is. None when there is no such silence."""
        row = await self._pool.fetchrow(_EXPIRE, silence_id, now, timeout=self._timeout_s)
        if row is not None:
            return _record(row)
        return await self.get(silence_id)

    async def active_and_future(self, now: datetime) -> list[Silence]:
        """The silences that mute something now or later, as the routing domain sees them."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM silences WHERE ends_at > $1 ORDER BY starts_at, id", now,
            timeout=self._timeout_s)
        out = []
        for row in rows:
            try:
                matchers = parse_matchers([dict(m) for m in row["matchers"]])
            except MatcherError as exc:  # a row written by hand: the API checks every matcher
                log.error("silence %s is left out: %s", row["id"], exc)
                continue
            out.append(Silence(str(row["id"]), matchers, _ms(row["starts_at"]), _ms(row["ends_at"])))
        return out
