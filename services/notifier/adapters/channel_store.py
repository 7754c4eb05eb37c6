"""Alert channels in PostgreSQL (`alert_channels`, migrations 0003 and 0011).

A channel's config is kept in two parts: `config` holds what may be shown,
`secrets` the Fernet token of the rest (tokens, passwords, URLs carrying a
key). A `Channel` read back carries both, the secrets opened: the API shows
them masked, the notifier's senders use them.

`owner` narrows every call to the channels of one miner (a `miner:<name>`
key's); another's channel is then as absent as an unknown one. None: every
channel (an admin key).

The notifier polls `state()` (one aggregate over a small table) and reloads
`all_for_sending()` only when it changed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg

from ..domain.matchers import parse_matchers
from ..domain.routing import Route
from .secrets import SecretBox, SecretsUnreadable

__all__ = ["Channel", "ChannelExists", "ChannelSpec", "ChannelStore"]

log = logging.getLogger(__name__)

_COLUMNS: Final = """id, name, type, config, secrets, matchers, label_matchers, min_severity, send_resolved,
group_by, group_wait, group_interval, repeat_interval, enabled, miner, rate_limit_per_minute, created_by,
created_at, updated_at"""

_INSERT: Final = f"""
INSERT INTO alert_channels (name, type, config, secrets, matchers, label_matchers, min_severity, send_resolved,
                            group_by, group_wait, group_interval, repeat_interval, enabled, miner,
                            rate_limit_per_minute, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
RETURNING {_COLUMNS}
"""

# created_by is the channel's maker's: a replacement keeps it.
_UPDATE: Final = f"""
UPDATE alert_channels SET name = $3, type = $4, config = $5, secrets = $6, matchers = $7, label_matchers = $8,
       min_severity = $9, send_resolved = $10, group_by = $11, group_wait = $12, group_interval = $13,
       repeat_interval = $14, enabled = $15, miner = $16, rate_limit_per_minute = $17
WHERE id = $1 AND ($2::text IS NULL OR miner = $2)
RETURNING {_COLUMNS}
"""

_STATE: Final = "SELECT count(*) AS n, max(updated_at) AS latest FROM alert_channels"


class ChannelExists(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"a channel named {name!r} exists")
        self.name = name


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """A channel as written: its config already checked and split (`channel_types.split_secrets`)."""

    name: str
    type: str
    config: Mapping[str, Any]
    secrets: Mapping[str, Any] = field(default_factory=dict)
    matchers: Mapping[str, str] = field(default_factory=dict)  # the contract's: label -> exact value
    label_matchers: Sequence[Mapping[str, str]] = ()  # [{"name", "op", "value"}]
    min_severity: str = "info"
    send_resolved: bool = True
    group_by: Sequence[str] = ()
    group_wait_ms: int = 30_000
    group_interval_ms: int = 300_000
    repeat_interval_ms: int = 4 * 3_600_000
    enabled: bool = True
    miner: str | None = None
    rate_limit_per_minute: float | None = None
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class Channel:
    id: int
    name: str
    type: str
    config: Mapping[str, Any]  # the public part
    secrets: Mapping[str, Any]  # opened: for the senders, and masked by the API
    matchers: Mapping[str, str]
    label_matchers: Sequence[Mapping[str, str]]
    min_severity: str
    send_resolved: bool
    group_by: tuple[str, ...]
    group_wait_ms: int
    group_interval_ms: int
    repeat_interval_ms: int
    enabled: bool
    miner: str | None
    rate_limit_per_minute: float | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    # Why the stored secrets could not be opened (then `secrets` is empty and the channel cannot send).
    secrets_error: str | None = None

    def full_config(self) -> dict[str, Any]:
        """What a sender needs: the public config and the secrets together."""
        return {**self.config, **self.secrets}

    def route(self) -> Route:
        """The channel as the routing domain sees it: the contract's exact matchers, then the label matchers.

        Raises MatcherError for a matcher the API would have refused (a row written by hand)."""
        matchers = (*parse_matchers(dict(self.matchers), "matchers"),
                    *parse_matchers([dict(m) for m in self.label_matchers], "label_matchers"))
        return Route(channel_id=self.id, name=self.name, matchers=matchers, min_severity=self.min_severity,
                     miner=self.miner, group_by=self.group_by, group_wait_ms=self.group_wait_ms,
                     group_interval_ms=self.group_interval_ms, repeat_interval_ms=self.repeat_interval_ms,
                     send_resolved=self.send_resolved, enabled=self.enabled)


def _ms(value: timedelta) -> int:
    return int(value.total_seconds() * 1000)


def _interval(ms: int) -> timedelta:
    return timedelta(milliseconds=ms)


class ChannelStore:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox, *, timeout_s: float = 10.0) -> None:
        self._pool = pool
        self._box = box
        self._timeout_s = timeout_s

    def _channel(self, row: Mapping[str, Any]) -> Channel:
        error = None
        try:
            secrets = self._box.open(row["secrets"], what=f"channel {row['id']} ({row['name']})")
        except SecretsUnreadable as exc:
            log.error("the secrets of %s cannot be opened: %s", exc.what, exc.reason)
            secrets, error = {}, exc.reason
        return Channel(
            id=row["id"], name=row["name"], type=row["type"], config=dict(row["config"]), secrets=secrets,
            matchers=dict(row["matchers"]), label_matchers=[dict(m) for m in row["label_matchers"]],
            min_severity=row["min_severity"], send_resolved=row["send_resolved"], group_by=tuple(row["group_by"]),
            group_wait_ms=_ms(row["group_wait"]), group_interval_ms=_ms(row["group_interval"]),
            repeat_interval_ms=_ms(row["repeat_interval"]), enabled=row["enabled"], miner=row["miner"],
            rate_limit_per_minute=row["rate_limit_per_minute"], created_by=row["created_by"],
            created_at=row["created_at"], updated_at=row["updated_at"], secrets_error=error,
        )

    def _args(self, spec: ChannelSpec) -> tuple[Any, ...]:
        return (spec.name, spec.type, dict(spec.config), self._box.seal(spec.secrets), dict(spec.matchers),
                [dict(m) for m in spec.label_matchers], spec.min_severity, spec.send_resolved, list(spec.group_by),
                _interval(spec.group_wait_ms), _interval(spec.group_interval_ms),
                _interval(spec.repeat_interval_ms), spec.enabled, spec.miner, spec.rate_limit_per_minute)

    async def create(self, spec: ChannelSpec) -> Channel:
        try:
            row = await self._pool.fetchrow(_INSERT, *self._args(spec), spec.created_by, timeout=self._timeout_s)
        except asyncpg.UniqueViolationError as exc:
            raise ChannelExists(spec.name) from exc
        assert row is not None  # INSERT ... RETURNING always returns its row
        return self._channel(row)

    async def update(self, channel_id: int, spec: ChannelSpec, *, owner: str | None = None) -> Channel | None:
        """Replace the channel (its maker and creation time stay); None when absent for `owner`."""
        try:
            row = await self._pool.fetchrow(_UPDATE, channel_id, owner, *self._args(spec), timeout=self._timeout_s)
        except asyncpg.UniqueViolationError as exc:
            raise ChannelExists(spec.name) from exc
        return self._channel(row) if row is not None else None

    async def delete(self, channel_id: int, *, owner: str | None = None) -> bool:
        status: str = await self._pool.execute(
            "DELETE FROM alert_channels WHERE id = $1 AND ($2::text IS NULL OR miner = $2)", channel_id, owner,
            timeout=self._timeout_s)
        return status.endswith(" 1")

    async def get(self, channel_id: int, *, owner: str | None = None) -> Channel | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM alert_channels WHERE id = $1 AND ($2::text IS NULL OR miner = $2)",
            channel_id, owner, timeout=self._timeout_s)
        return self._channel(row) if row is not None else None

    async def channels(self, *, owner: str | None = None) -> list[Channel]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM alert_channels WHERE $1::text IS NULL OR miner = $1 ORDER BY id", owner,
            timeout=self._timeout_s)
        return [self._channel(r) for r in rows]

    async def all_for_sending(self) -> list[Channel]:
        """Every channel whose secrets open (the others are logged, and left out: they could not send)."""
        return [c for c in await self.channels() if c.secrets_error is None]

    async def state(self) -> tuple[int, datetime | None]:
        """(count, latest updated_at): changes whenever a channel is added, edited or deleted."""
        row = await self._pool.fetchrow(_STATE, timeout=self._timeout_s)
        assert row is not None  # an aggregate always returns one row
        return row["n"], row["latest"]

    async def rotate_secrets(self) -> tuple[int, list[str]]:
        """Every channel's secrets sealed again under the first key, in one transaction (after a new
        key was put first in NOTIFIER_SECRET_KEYS): (channels re-sealed, the ones no key opens)."""
        async with self._pool.acquire(timeout=self._timeout_s) as conn, conn.transaction():
            rows = await conn.fetch("SELECT id, name, secrets FROM alert_channels WHERE secrets IS NOT NULL"
                                    " ORDER BY id FOR UPDATE", timeout=self._timeout_s)
            sealed, unreadable = [], []
            for row in rows:
                what = f"channel {row['id']} ({row['name']})"
                try:
                    sealed.append((row["id"], self._box.rotate(row["secrets"], what=what)))
                except SecretsUnreadable as exc:
                    unreadable.append(f"{what}: {exc.reason}")
            await conn.executemany("UPDATE alert_channels SET secrets = $2 WHERE id = $1", sealed,
                                   timeout=self._timeout_s)
        return len(sealed), unreadable
