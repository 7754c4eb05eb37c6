"""API key values and the caching authenticator, with a hand-written fake store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.adapters.keys import KeyAuthenticator, KeyStoreUnavailable
from services.ingest.domain.keys import (
    ApiKeyRecord,
    InvalidScopes,
    display_prefix,
    format_key,
    hash_key,
    parse_scopes,
    plausible_token,
    principal_id,
)
from shared.http.auth import KeyRefused, Principal, Scope

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOKEN = format_key(bytes(range(32)))


def test_key_format_and_hash() -> None:
    assert TOKEN.startswith("chm_") and len(TOKEN) == 4 + 43
    assert hash_key(TOKEN) == hash_key(TOKEN) and len(hash_key(TOKEN)) == 64
    assert hash_key(TOKEN) != hash_key(TOKEN + "x")
    assert display_prefix(TOKEN) == TOKEN[:12]
    assert plausible_token(TOKEN)
    assert not plausible_token("Bearer-ish")
    assert not plausible_token("chm_" + "a" * 300)
    with pytest.raises(ValueError):
        format_key(b"short")


def test_parse_scopes() -> None:
    assert parse_scopes("ingest, READ,admin") == {Scope.INGEST, Scope.READ, Scope.ADMIN}
    assert parse_scopes([Scope.READ, "read"]) == {Scope.READ}
    with pytest.raises(InvalidScopes) as info:
        parse_scopes("read,write,root")
    assert info.value.unknown == ["write", "root"]
    with pytest.raises(InvalidScopes):
        parse_scopes(" , ")


def test_principal_id_is_the_uuid_text() -> None:
    key_id = uuid.uuid4()
    assert uuid.UUID(principal_id(key_id)) == key_id


def record(**changes: object) -> ApiKeyRecord:
    values: dict[str, object] = {
        "id": uuid.UUID(int=7), "name": "node-1", "key_prefix": TOKEN[:12],
        "scopes": frozenset({Scope.INGEST}), "rate_limit_per_second": 5.0, "created_at": T0,
    }
    values.update(changes)
    return ApiKeyRecord(**values)  # type: ignore[arg-type]


def test_usable_at() -> None:
    assert record().usable_at(T0)
    assert not record(revoked_at=T0).usable_at(T0)
    assert record(revoked_at=T0 + timedelta(hours=1)).usable_at(T0)
    assert not record(expires_at=T0).usable_at(T0)
    assert record(expires_at=T0 + timedelta(seconds=1)).usable_at(T0)


def test_refusal_says_why() -> None:
    assert record().refusal_at(T0) is None
    assert record(revoked_at=T0).refusal_at(T0) is KeyRefused.REVOKED
    assert record(expires_at=T0).refusal_at(T0) is KeyRefused.EXPIRED
    # Revoked and expired: revocation is the act someone took, so it is what is reported.
    assert record(revoked_at=T0, expires_at=T0).refusal_at(T0) is KeyRefused.REVOKED


class FakeStore:
    def __init__(self) -> None:
        self.rows: dict[str, ApiKeyRecord] = {}
        self.lookups = 0
        self.touched: list[dict[uuid.UUID, datetime]] = []
        self.failing = False

    async def lookup(self, key_hash: str) -> ApiKeyRecord | None:
        self.lookups += 1
        if self.failing:
            raise ConnectionRefusedError("database is down")
        return self.rows.get(key_hash)

    async def touch(self, ids: Collection[uuid.UUID] | Mapping[uuid.UUID, datetime]) -> None:
        if self.failing:
            raise ConnectionRefusedError("database is down")
        assert isinstance(ids, Mapping)
        self.touched.append(dict(ids))


class Clocks:
    def __init__(self) -> None:
        self.mono_s = 0.0
        self.wall = T0

    def advance(self, seconds: float) -> None:
        self.mono_s += seconds
        self.wall += timedelta(seconds=seconds)


def authenticator(store: FakeStore, clocks: Clocks, ttl_s: float = 5.0) -> KeyAuthenticator:
    return KeyAuthenticator(store, cache_ttl_s=ttl_s, touch_interval_s=0.01,
                            clock=lambda: clocks.mono_s, wall_clock=lambda: clocks.wall)


async def test_known_key_gives_its_principal_and_is_cached() -> None:
    store, clocks = FakeStore(), Clocks()
    store.rows[hash_key(TOKEN)] = record()
    auth = authenticator(store, clocks)
    principal = await auth.authenticate(TOKEN)
    assert isinstance(principal, Principal)
    assert principal.scopes == {Scope.INGEST} and principal.rate_limit_per_second == 5.0
    assert principal.key_id == str(uuid.UUID(int=7))
    for _ in range(10):
        assert await auth.authenticate(TOKEN) == principal
    assert store.lookups == 1


async def test_revocation_takes_effect_when_the_cache_entry_expires() -> None:
    store, clocks = FakeStore(), Clocks()
    store.rows[hash_key(TOKEN)] = record()
    auth = authenticator(store, clocks, ttl_s=5.0)
    assert isinstance(await auth.authenticate(TOKEN), Principal)
    store.rows[hash_key(TOKEN)] = record(revoked_at=clocks.wall)
    clocks.advance(4.9)
    assert isinstance(await auth.authenticate(TOKEN), Principal)  # the documented window
    clocks.advance(0.2)
    assert await auth.authenticate(TOKEN) is KeyRefused.REVOKED


async def test_expiry_is_checked_on_every_request_even_cached() -> None:
    store, clocks = FakeStore(), Clocks()
    store.rows[hash_key(TOKEN)] = record(expires_at=T0 + timedelta(seconds=1))
    auth = authenticator(store, clocks)
    assert isinstance(await auth.authenticate(TOKEN), Principal)
    clocks.advance(1.0)
    assert await auth.authenticate(TOKEN) is KeyRefused.EXPIRED
    assert store.lookups == 1


async def test_unknown_and_implausible_tokens() -> None:
    store, clocks = FakeStore(), Clocks()
    auth = authenticator(store, clocks)
    assert await auth.authenticate("chm_unknown") is KeyRefused.UNKNOWN
    assert await auth.authenticate("chm_unknown") is KeyRefused.UNKNOWN
    assert store.lookups == 1  # unknown keys are cached too
    assert await auth.authenticate("not-ours") is KeyRefused.UNKNOWN
    assert store.lookups == 1  # never looked up


async def test_cache_is_bounded() -> None:
    store, clocks = FakeStore(), Clocks()
    auth = KeyAuthenticator(store, cache_ttl_s=60, max_cached=10, clock=lambda: clocks.mono_s)
    for i in range(100):
        await auth.authenticate(f"chm_random{i}")
    assert len(auth._cache) <= 10


async def test_database_down_is_a_retriable_error() -> None:
    store, clocks = FakeStore(), Clocks()
    store.failing = True
    with pytest.raises(KeyStoreUnavailable) as info:
        await authenticator(store, clocks).authenticate(TOKEN)
    assert info.value.retriable and isinstance(info.value.cause, ConnectionRefusedError)


async def test_usage_is_flushed_in_batches_and_on_stop() -> None:
    store, clocks = FakeStore(), Clocks()
    store.rows[hash_key(TOKEN)] = record()
    auth = authenticator(store, clocks)
    await auth.start()
    for _ in range(5):
        await auth.authenticate(TOKEN)
        clocks.advance(1)
    for _ in range(100):
        if store.touched:
            break
        await asyncio.sleep(0.01)
    assert store.touched == [{uuid.UUID(int=7): T0 + timedelta(seconds=4)}]
    await auth.authenticate(TOKEN)
    await auth.stop()
    await auth.stop()
    assert store.touched[-1] == {uuid.UUID(int=7): T0 + timedelta(seconds=5)}


async def test_usage_kept_for_later_when_the_database_fails() -> None:
    store, clocks = FakeStore(), Clocks()
    store.rows[hash_key(TOKEN)] = record()
    auth = authenticator(store, clocks)
    await auth.authenticate(TOKEN)
    store.failing = True
    await auth.flush_usage()
    store.failing = False
    await auth.flush_usage()
    assert store.touched == [{uuid.UUID(int=7): T0}]
