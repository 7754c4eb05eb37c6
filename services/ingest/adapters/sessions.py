"""Console sessions in PostgreSQL (`console_sessions`); implements `shared.http.auth.SessionResolver`.

A session is only as good as its key: every lookup reads the key's row with
the session's, so a revoked or expired key ends its sessions (and they are
deleted then). Like `KeyAuthenticator`, answers are kept `cache_ttl_s`
(API_KEY_CACHE_TTL_S): a busy page costs one query per TTL, and a
revocation or a sign-out on another instance takes effect within it.
Expiry itself is checked on every request, cached or not.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

import asyncpg

from services.ingest.adapters.keys import KeyStoreUnavailable
from services.ingest.domain.keys import ApiKeyRecord, stored_grant
from services.ingest.domain.sessions import (
    ConsoleSession,
    expires_at,
    hash_token,
    is_live,
    new_token,
    plausible_token,
)
from shared.access import Principal
from shared.db.errors import DATABASE_ERRORS

_LOOKUP: Final = """
SELECT s.csrf_token, s.expires_at AS session_expires_at,
       k.id, k.name, k.key_prefix, k.scopes, k.rate_limit_per_second, k.created_at, k.last_used_at,
       k.expires_at, k.revoked_at
FROM console_sessions AS s JOIN api_keys AS k ON k.id = s.key_id
WHERE s.token_hash = $1
"""


class _Entry:
    __slots__ = ("cached_until_s", "session")

    def __init__(self, session: ConsoleSession | None, cached_until_s: float) -> None:
        self.session = session
        self.cached_until_s = cached_until_s


def _key_record(row: asyncpg.Record) -> ApiKeyRecord:
    grant = stored_grant(row["scopes"] or ())
    return ApiKeyRecord(
        id=row["id"], name=row["name"], key_prefix=row["key_prefix"], scopes=grant.scopes,
        rate_limit_per_second=row["rate_limit_per_second"], created_at=row["created_at"],
        last_used_at=row["last_used_at"], expires_at=row["expires_at"], revoked_at=row["revoked_at"],
        miner=grant.miner,
    )


class SessionStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        ttl_s: float,
        cache_ttl_s: float = 5.0,
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_used: Callable[[uuid.UUID], None] = lambda key_id: None,
    ) -> None:
        self._pool = pool
        self._ttl_s = ttl_s
        # Told the key of every request a live session authenticates, so the key's
        # last_used_at counts the console's use too (KeyAuthenticator.note_used).
        self._on_used = on_used
        self._cache_ttl_s = cache_ttl_s
        self._max_cached = max_cached
        self._clock = clock
        self._wall_clock = wall_clock
        self._cache: dict[str, _Entry] = {}

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    async def create(self, principal: Principal) -> tuple[str, ConsoleSession]:
        """A new session for the key: the cookie's token (never stored) and the session."""
        token, csrf_token = new_token(), new_token()
        now = self._wall_clock()
        expires = expires_at(now, self._ttl_s)
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                # Sign-ins are rare: the moment to sweep sessions nobody will use again.
                await connection.execute("DELETE FROM console_sessions WHERE expires_at <= $1", now)
                await connection.execute(
                    "INSERT INTO console_sessions (token_hash, key_id, csrf_token, created_at, expires_at) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    hash_token(token), uuid.UUID(principal.key_id), csrf_token, now, expires)
        except DATABASE_ERRORS as exc:
            raise KeyStoreUnavailable(exc) from exc
        return token, ConsoleSession(principal=principal, csrf_token=csrf_token, expires_at=expires)

    async def resolve(self, token: str) -> ConsoleSession | None:
        if not plausible_token(token):
            return None
        token_hash = hash_token(token)
        now_s = self._clock()
        entry = self._cache.get(token_hash)
        if entry is None or entry.cached_until_s <= now_s:
            entry = _Entry(await self._lookup(token_hash), now_s + self._cache_ttl_s)
            self._remember(token_hash, entry, now_s)
        session = entry.session
        if session is None or not is_live(session.expires_at, self._wall_clock()):
            return None
        self._on_used(uuid.UUID(session.principal.key_id))
        return session

    async def end(self, token: str) -> None:
        """Sign out: the session is gone here at once, on other instances within the cache TTL."""
        if not plausible_token(token):
            return
        token_hash = hash_token(token)
        self._cache.pop(token_hash, None)
        try:
            await self._pool.execute("DELETE FROM console_sessions WHERE token_hash = $1", token_hash)
        except DATABASE_ERRORS as exc:
            raise KeyStoreUnavailable(exc) from exc

    async def _lookup(self, token_hash: str) -> ConsoleSession | None:
        try:
            row = await self._pool.fetchrow(_LOOKUP, token_hash)
            if row is None:
                return None
            key = _key_record(row)
            if key.refusal_at(self._wall_clock()) is not None:
                # The key no longer lets anyone in: neither do the sessions it opened.
                await self._pool.execute("DELETE FROM console_sessions WHERE key_id = $1", key.id)
                return None
        except DATABASE_ERRORS as exc:
            raise KeyStoreUnavailable(exc) from exc
        return ConsoleSession(principal=key.principal(), csrf_token=row["csrf_token"],
                              expires_at=row["session_expires_at"])

    def _remember(self, token_hash: str, entry: _Entry, now_s: float) -> None:
        if self._cache_ttl_s <= 0:
            return
        if len(self._cache) >= self._max_cached:
            # Unknown tokens are cached too: a client cycling random cookies must not grow it.
            for stale in [h for h, e in self._cache.items() if e.cached_until_s <= now_s]:
                del self._cache[stale]
            while len(self._cache) >= self._max_cached:
                del self._cache[next(iter(self._cache))]
        self._cache[token_hash] = entry
