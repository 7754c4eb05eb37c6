"""API keys as values: their format, their stored hash, their scopes. No I/O.

Only a hash of a key is ever stored. A plain SHA-256 is enough here, unlike
for passwords: keys are 256 bits from the OS's CSPRNG, so there is no
dictionary to try and brute force is out of reach whatever the hash costs.
A fast, unsalted hash is also what lets the service find a key by its hash
with one indexed lookup (a salted or slow hash would need the key's id in
the token and cost milliseconds of CPU per request).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from shared.access import (
    MINER_NAME_MAX_CHARS,
    MINER_SCOPE_PREFIX,
    KeyRefused,
    Principal,
    Scope,
    has_miner_prefix,
    miner_scope,
    parse_miner_scope,
)

KEY_PREFIX: Final = "chm_"
SECRET_BYTES: Final = 32
# The non-secret start of a key shown by `chimera keys list`, so people can
# tell their keys apart: "chm_" plus 8 characters (48 bits) of the secret.
DISPLAY_PREFIX_CHARS: Final = len(KEY_PREFIX) + 8
# Longer bearer tokens are not ours; refusing them early bounds hashing work.
MAX_TOKEN_CHARS: Final = 256


class ScopeProblem(StrEnum):
    """Why scopes cannot be given to a key."""

    NONE = "none"
    UNKNOWN = "unknown"
    MINER_NAME = "miner_name"  # `miner:` followed by no valid miner name
    MINER_NOT_ALONE = "miner_not_alone"
    MANY_MINERS = "many_miners"


_EXPECTED: Final = (f"expected a comma-separated list of {', '.join(s.value for s in Scope)}, "
                    f"or a single {MINER_SCOPE_PREFIX}<name> alone")


def _problem_text(problem: ScopeProblem, culprits: Sequence[str]) -> str:
    named = ", ".join(map(repr, culprits))
    match problem:
        case ScopeProblem.NONE:
            return "no scope given"
        case ScopeProblem.UNKNOWN:
            return f"unknown scope(s) {named}"
        case ScopeProblem.MINER_NAME:
            return (f"{named} names no miner: a miner name is 1 to {MINER_NAME_MAX_CHARS} printable ASCII "
                    "characters '!' to '~' (no spaces)")
        case ScopeProblem.MINER_NOT_ALONE:
            return (f"a {MINER_SCOPE_PREFIX}<name> scope must be the key's only scope (got {named}); "
                    "make a separate key for ingest, read or admin")
        case ScopeProblem.MANY_MINERS:
            return f"a key may be limited to one miner only (got {named}); make one key per miner"


class InvalidScopes(ValueError):
    """Scopes a key cannot be given: `problem` says why, `culprits` which of the names given."""

    def __init__(self, problem: ScopeProblem, culprits: Sequence[str] = ()) -> None:
        self.problem = problem
        self.culprits = list(culprits)
        super().__init__(f"{_problem_text(problem, culprits)}; {_EXPECTED}")

    @property
    def unknown(self) -> list[str]:
        """The names that are no scope at all."""
        return self.culprits if self.problem is ScopeProblem.UNKNOWN else []


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What a key may do: scopes, or (alone) the one miner it is limited to."""

    scopes: frozenset[Scope]
    miner: str | None = None

    def names(self) -> list[str]:
        """The scope names as `api_keys.scopes` stores them and `chimera keys list` shows them."""
        if self.miner is not None:
            return [miner_scope(self.miner)]
        return sorted(s.value for s in self.scopes)


def format_key(secret: bytes) -> str:
    """The key a client presents, from random bytes (the caller draws them from `secrets`)."""
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"a key needs at least {SECRET_BYTES} random bytes")
    return KEY_PREFIX + base64.urlsafe_b64encode(secret).rstrip(b"=").decode("ascii")


def hash_key(plaintext: str) -> str:
    """What `api_keys.key_hash` holds for a key: SHA-256, hex (see the module docstring)."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def display_prefix(plaintext: str) -> str:
    return plaintext[:DISPLAY_PREFIX_CHARS]


def plausible_token(token: str) -> bool:
    """Whether a bearer token could be one of our keys (cheap check before hashing and lookup)."""
    return token.startswith(KEY_PREFIX) and len(token) <= MAX_TOKEN_CHARS


def _cleaned(names: str | Iterable[str]) -> list[str]:
    items = names.split(",") if isinstance(names, str) else list(names)
    return [item.strip() for item in items if item.strip()]


def parse_scopes(names: str | Iterable[str]) -> frozenset[Scope]:
    """Ordinary scopes from "ingest,read" or an iterable of names; raises InvalidScopes.

    A `miner:<name>` is no ordinary scope: `parse_grant` is what takes one."""
    cleaned = [item.lower() for item in _cleaned(names)]
    allowed = {s.value for s in Scope}
    unknown = [item for item in cleaned if item not in allowed]
    if unknown:
        raise InvalidScopes(ScopeProblem.UNKNOWN, unknown)
    if not cleaned:
        raise InvalidScopes(ScopeProblem.NONE)
    return frozenset(Scope(item) for item in cleaned)


def parse_grant(names: str | Iterable[str]) -> KeyGrant:
    """What a new key is given, from "ingest,read", "miner:alice" or an iterable of names; raises InvalidScopes.

    A miner scope must be the only scope, and name one miner: a key reading one
    miner's figures that could also write or read everything would limit nothing."""
    cleaned = _cleaned(names)
    meant_for_miners = [item for item in cleaned if has_miner_prefix(item)]
    if not meant_for_miners:
        return KeyGrant(parse_scopes(cleaned))
    others = [item for item in cleaned if not has_miner_prefix(item)]
    allowed = {s.value for s in Scope}
    unknown = [item for item in others if item.lower() not in allowed]
    if unknown:
        raise InvalidScopes(ScopeProblem.UNKNOWN, unknown)
    bad = [item for item in meant_for_miners if parse_miner_scope(item) is None]
    if bad:
        raise InvalidScopes(ScopeProblem.MINER_NAME, bad)
    if others:
        raise InvalidScopes(ScopeProblem.MINER_NOT_ALONE, cleaned)
    miners = sorted({name for item in meant_for_miners if (name := parse_miner_scope(item)) is not None})
    if len(miners) > 1:
        raise InvalidScopes(ScopeProblem.MANY_MINERS, [miner_scope(m) for m in miners])
    return KeyGrant(frozenset(), miners[0])


def stored_grant(stored: Iterable[str | None]) -> KeyGrant:
    """What a stored key may do, from `api_keys.scopes`: never more than its names say, never an error.

    A name this version does not know (written by hand or by a newer version)
    grants nothing rather than failing every request. A row that mixes a miner
    scope with others is held to its miner (the narrower reading); one naming
    two miners grants nothing, as no single miner is meant."""
    names = [item for item in stored if item is not None]  # text[] may hold a NULL written by hand
    known = {s.value for s in Scope}
    miners = {name for item in names if (name := parse_miner_scope(item)) is not None}
    if len(miners) > 1:
        return KeyGrant(frozenset())
    if miners:
        return KeyGrant(frozenset(), miners.pop())
    return KeyGrant(frozenset(Scope(item) for item in names if item in known))


def principal_id(key_id: uuid.UUID) -> str:
    """`Principal.key_id`: the key's UUID as text (what dashboards record as their owner)."""
    return str(key_id)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One row of `api_keys`, without its hash."""

    id: uuid.UUID
    name: str
    key_prefix: str | None
    scopes: frozenset[Scope]
    rate_limit_per_second: float | None
    created_at: datetime
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    # The one miner a `miner:<name>` key is limited to (then `scopes` is empty).
    miner: str | None = None

    @property
    def grant(self) -> KeyGrant:
        return KeyGrant(self.scopes, self.miner)

    def usable_at(self, now: datetime) -> bool:
        """Not revoked and not expired at `now`."""
        return self.refusal_at(now) is None

    def refusal_at(self, now: datetime) -> KeyRefused | None:
        """Why the key lets nobody in at `now` (revoked wins over expired), None while it is usable."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return KeyRefused.REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return KeyRefused.EXPIRED
        return None

    def principal(self) -> Principal:
        return Principal(
            key_id=principal_id(self.id),
            name=self.name,
            scopes=self.scopes,
            rate_limit_per_second=self.rate_limit_per_second,
            miner=self.miner,
        )
