"""API keys in PostgreSQL (`api_keys`), and the authenticator the HTTP API uses.

`KeyAuthenticator` keeps what it looked up for `cache_ttl_s` (5 s by
default), valid or not, so a busy key costs one query per TTL instead of one
per request. The price is that a revocation (`chimera keys revoke`, possibly
from another machine) takes effect on each instance within `cache_ttl_s`.
Expiry (`expires_at`) is checked on every request, cached or not.
`last_used_at` is written in batches by an owned background task.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import asyncpg

from services.ingest.domain.keys import (
    SECRET_BYTES,
    ApiKeyRecord,
    InvalidScopes,
    display_prefix,
    format_key,
    hash_key,
    parse_grant,
    plausible_token,
    stored_grant,
)
from shared.background import cancel_and_wait, spawn
from shared.db.errors import DATABASE_ERRORS
from shared.http.auth import KeyRefused, Principal, Scope

log = logging.getLogger(__name__)

_COLUMNS: Final = (
    "id, name, key_prefix, scopes, rate_limit_per_second, created_at, last_used_at, "
    "expires_at, revoked_at"
)


class InvalidKeySpec(ValueError):
    """A key cannot be created as asked; `field` names the argument at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class KeyStoreUnavailable(Exception):
    """The key store could not be asked; the request may succeed later."""

    retriable = True

    def __init__(self, cause: BaseException, retry_after_s: int = 2) -> None:
        self.cause = cause
        self.retry_after_s = retry_after_s
        super().__init__(f"API keys cannot be checked: {cause!r}")


def _record(row: asyncpg.Record) -> ApiKeyRecord:
    grant = stored_grant(row["scopes"] or ())
    return ApiKeyRecord(
        id=row["id"],
        name=row["name"],
        key_prefix=row["key_prefix"],
        scopes=grant.scopes,
        rate_limit_per_second=row["rate_limit_per_second"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        miner=grant.miner,
    )


class ApiKeyStore:
    """`api_keys` rows. Takes a pool or a single connection (the CLI uses one)."""

    def __init__(self, db: asyncpg.Pool | asyncpg.Connection) -> None:
        self._db = db

    async def create(
        self, name: str, scopes: Iterable[Scope | str], *,
        rate_limit_per_second: float | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        """A new key: its record and the plaintext, which is shown once and never stored.

        `scopes` are ingest, read, admin, or one `miner:<name>` alone (see `parse_grant`)."""
        name = name.strip()
        if not name:
            raise InvalidKeySpec("name", "must not be empty")
        try:
            granted = parse_grant(scopes)
        except InvalidScopes as exc:
            raise InvalidKeySpec("scopes", str(exc)) from None
        if rate_limit_per_second is not None and not rate_limit_per_second > 0:
            raise InvalidKeySpec("rate_limit_per_second", "must be a positive number")
        plaintext = format_key(secrets.token_bytes(SECRET_BYTES))
        row = await self._db.fetchrow(
            f"INSERT INTO api_keys (name, key_hash, key_prefix, scopes, rate_limit_per_second) "
            f"VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
            name, hash_key(plaintext), display_prefix(plaintext),
            granted.names(), rate_limit_per_second,
        )
        return _record(row), plaintext

    async def list(self) -> list[ApiKeyRecord]:
        rows = await self._db.fetch(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id")
        return [_record(row) for row in rows]

    async def revoke(self, key_id: uuid.UUID) -> bool:
        """True when the key was active and is now revoked; False when unknown or already revoked."""
        revoked = await self._db.fetchval(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL "
            "RETURNING id",
            key_id,
        )
        return revoked is not None

    async def lookup(self, key_hash: str) -> ApiKeyRecord | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = $1", key_hash
        )
        return None if row is None else _record(row)

    async def touch(self, ids: Collection[uuid.UUID] | Mapping[uuid.UUID, datetime]) -> None:
        """Record that these keys were used: now, or at the time the mapping gives per key."""
        if not ids:
            return
        if isinstance(ids, Mapping):
            key_ids, times = list(ids), list(ids.values())
        else:
            key_ids = list(ids)
            times = [datetime.now(UTC)] * len(key_ids)
        # GREATEST: two instances flushing out of order must not move the time back.
        await self._db.execute(
            "UPDATE api_keys AS k SET last_used_at = GREATEST(k.last_used_at, u.at) "
            "FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE k.id = u.id",
            key_ids, times,
        )


class KeyLookup(Protocol):
    async def lookup(self, key_hash: str) -> ApiKeyRecord | None: ...

    async def touch(self, ids: Collection[uuid.UUID] | Mapping[uuid.UUID, datetime]) -> None: ...


class _Entry:
    __slots__ = ("expires_s", "record")

    def __init__(self, record: ApiKeyRecord | None, expires_s: float) -> None:
        self.record = record
        self.expires_s = expires_s


class KeyAuthenticator:
    """Implements `shared.http.auth.Authenticator` over an `ApiKeyStore`."""

    def __init__(
        self,
        store: KeyLookup,
        *,
        cache_ttl_s: float = 5.0,
        touch_interval_s: float = 10.0,
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._cache_ttl_s = cache_ttl_s
        self._touch_interval_s = touch_interval_s
        self._max_cached = max_cached
        self._clock = clock
        self._wall_clock = wall_clock
        self._cache: dict[str, _Entry] = {}
        self._used: dict[uuid.UUID, datetime] = {}
        self._flusher: asyncio.Task[Any] | None = None

    async def authenticate(self, token: str) -> Principal | KeyRefused:
        if not plausible_token(token):
            return KeyRefused.UNKNOWN
        key_hash = hash_key(token)
        now_s = self._clock()
        entry = self._cache.get(key_hash)
        if entry is None or entry.expires_s <= now_s:
            try:
                record = await self._store.lookup(key_hash)
            except DATABASE_ERRORS as exc:
                raise KeyStoreUnavailable(exc) from exc
            entry = _Entry(record, now_s + self._cache_ttl_s)
            self._remember(key_hash, entry, now_s)
        record = entry.record
        now = self._wall_clock()
        if record is None:
            return KeyRefused.UNKNOWN
        refusal = record.refusal_at(now)
        if refusal is not None:
            return refusal
        self._used[record.id] = now
        return record.principal()

    def note_used(self, key_id: uuid.UUID) -> None:
        """A request authenticated another way (a console session opened with this key)
        used the key: written with the next flush like a header's use."""
        self._used[key_id] = self._wall_clock()

    def _remember(self, key_hash: str, entry: _Entry, now_s: float) -> None:
        if self._cache_ttl_s <= 0:
            return
        if len(self._cache) >= self._max_cached:
            # Unknown tokens are cached too, so someone cycling through random
            # tokens must not grow the cache without bound.
            for stale in [h for h, e in self._cache.items() if e.expires_s <= now_s]:
                del self._cache[stale]
            while len(self._cache) >= self._max_cached:
                del self._cache[next(iter(self._cache))]
        self._cache[key_hash] = entry

    async def flush_usage(self) -> None:
        """Write the pending last_used_at updates; kept for the next flush if the database fails."""
        used, self._used = self._used, {}
        if not used:
            return
        try:
            await self._store.touch(used)
        except DATABASE_ERRORS as exc:
            log.warning("cannot record API key usage (will retry): %r", exc)
            for key_id, at in used.items():
                self._used.setdefault(key_id, at)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._touch_interval_s)
            await self.flush_usage()

    async def start(self) -> None:
        if self._flusher is None:
            self._flusher = spawn(self._flush_periodically(), "api-key-usage-flusher")

    async def stop(self) -> None:
        """Stop the flusher and write what is pending. Safe to call twice."""
        flusher, self._flusher = self._flusher, None
        if flusher is None:
            return
        await cancel_and_wait(flusher)
        await self.flush_usage()
