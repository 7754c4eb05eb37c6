"""Who is calling and what it may do: API key scopes and principals, as plain values.

Apart from `shared.http.auth` (the FastAPI side, which re-exports these) so
that a service's domain can name a principal or a refusal without importing
a web framework. Definitions only: no I/O, standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated API key."""

    key_id: str  # api_keys.id (a uuid)
    name: str
    scopes: frozenset[Scope]
    # Requests per second this key may make; None means the service default.
    rate_limit_per_second: float | None = None


class KeyRefused(StrEnum):
    """Why a presented key let nobody in; the label of the failed-authentication counter."""

    MALFORMED = "malformed"  # not "Bearer <token>", or a token that cannot be one of ours
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"
