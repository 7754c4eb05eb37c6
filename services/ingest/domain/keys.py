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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from shared.access import KeyRefused, Principal, Scope

KEY_PREFIX: Final = "chm_"
SECRET_BYTES: Final = 32
# The non-secret start of a key shown by `chimera keys list`, so people can
# tell their keys apart: "chm_" plus 8 characters (48 bits) of the secret.
DISPLAY_PREFIX_CHARS: Final = len(KEY_PREFIX) + 8
# Longer bearer tokens are not ours; refusing them early bounds hashing work.
MAX_TOKEN_CHARS: Final = 256


class InvalidScopes(ValueError):
    """Scope names that are not `ingest`, `read` or `admin` (or none at all)."""

    def __init__(self, unknown: list[str]) -> None:
        self.unknown = unknown
        allowed = ", ".join(s.value for s in Scope)
        what = f"unknown scope(s) {', '.join(map(repr, unknown))}" if unknown else "no scope given"
        super().__init__(f"{what}; expected a comma-separated list of {allowed}")


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


def parse_scopes(names: str | Iterable[str]) -> frozenset[Scope]:
    """Scopes from "ingest,read" or an iterable of names; raises InvalidScopes."""
    items = names.split(",") if isinstance(names, str) else list(names)
    cleaned = [item.strip().lower() for item in items if item.strip()]
    allowed = {s.value for s in Scope}
    unknown = [item for item in cleaned if item not in allowed]
    if unknown or not cleaned:
        raise InvalidScopes(unknown)
    return frozenset(Scope(item) for item in cleaned)


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
        )
