"""Who is calling and what it may do: API key scopes and principals, as plain values.

Apart from `shared.http.auth` (the FastAPI side, which re-exports these) so
that a service's domain can name a principal or a refusal without importing
a web framework. Definitions only: no I/O, standard library only.

Besides the scopes, a key can be limited to one miner (`miner:<name>`, its
only scope): such a key holds no `Scope` at all, so every route refuses it
unless the route lets miner keys in and narrows what it answers to
`Principal.miner` itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Scope(StrEnum):
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


MINER_SCOPE_PREFIX: Final = "miner:"
# The event contract's miner name (shared.events.MINER_PATTERN and the Miner field's
# length), repeated here because that module needs pydantic; a unit test keeps them equal.
MINER_NAME_PATTERN: Final = r"^[!-~]+$"
MINER_NAME_MAX_CHARS: Final = 128
_MINER_NAME: Final = re.compile(MINER_NAME_PATTERN)  # with fullmatch: no name ending in a newline


def is_miner_name(text: str) -> bool:
    """Whether `text` is a miner name the event contract accepts."""
    return len(text) <= MINER_NAME_MAX_CHARS and _MINER_NAME.fullmatch(text) is not None


def has_miner_prefix(text: str) -> bool:
    """Whether `text` is meant as a miner scope (`miner:`, in any case, like the other scope names)."""
    return text[: len(MINER_SCOPE_PREFIX)].lower() == MINER_SCOPE_PREFIX


def parse_miner_scope(text: str) -> str | None:
    """The miner of a `miner:<name>` scope; None when `text` is no miner scope or names no valid miner.

    Only the prefix ignores case: miner names (wallet addresses, pool usernames) are case-sensitive."""
    if not has_miner_prefix(text):
        return None
    name = text[len(MINER_SCOPE_PREFIX):]
    return name if is_miner_name(name) else None


def miner_scope(miner: str) -> str:
    """The scope text limiting a key to `miner`, as `api_keys.scopes` stores it."""
    if not is_miner_name(miner):
        raise ValueError(f"{miner!r} is not a miner name")
    return MINER_SCOPE_PREFIX + miner


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated API key."""

    key_id: str  # api_keys.id (a uuid)
    name: str
    scopes: frozenset[Scope]
    # Requests per second this key may make; None means the service default.
    rate_limit_per_second: float | None = None
    # The one miner a `miner:<name>` key is limited to; None for ordinary keys.
    miner: str | None = None

    def __post_init__(self) -> None:
        # A miner key holding a scope too would pass every route needing that
        # scope, none of which narrows to its miner: refused where it is built.
        if self.miner is not None and self.scopes:
            raise ValueError("a principal limited to a miner holds no other scope")


class KeyRefused(StrEnum):
    """Why a presented key let nobody in; the label of the failed-authentication counter."""

    MALFORMED = "malformed"  # not "Bearer <token>", or a token that cannot be one of ours
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"
