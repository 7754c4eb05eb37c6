"""Console sessions as values: tokens, their stored hash, CSRF tokens, expiry, `next=`. No I/O.

A session token is 32 bytes from the OS's CSPRNG; only its SHA-256 is
stored (`console_sessions.token_hash`), for the same reason API keys are
stored that way (services/ingest/domain/keys.py): nothing to brute force,
and one indexed lookup per request. Every comparison of a secret the client
sends with one the server holds goes through `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from shared.access import Principal

SESSION_COOKIE: Final = "chimera_session"
# The pre-session double-submit token of the sign-in form (cookie + hidden field).
SIGN_IN_COOKIE: Final = "chimera_sign_in"
TOKEN_BYTES: Final = 32
# token_urlsafe(32) is 43 characters; anything much longer is not ours and is
# refused before hashing, which bounds the work a hostile cookie causes.
MAX_TOKEN_CHARS: Final = 64
MAX_NEXT_CHARS: Final = 2048
HOME: Final = "/"


def new_token() -> str:
    """A fresh secret for a session cookie, a CSRF token or a sign-in form."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def plausible_token(token: str) -> bool:
    """Whether `token` could be one of ours (length and alphabet), checked before any lookup."""
    return 0 < len(token) <= MAX_TOKEN_CHARS and all(c.isascii() and (c.isalnum() or c in "-_") for c in token)


def hash_token(token: str) -> str:
    """What `console_sessions.token_hash` stores for a session token."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def same_secret(sent: str | None, held: str) -> bool:
    """Whether the client's copy of a secret equals the server's, in constant time; False when absent."""
    if sent is None or not held:
        return False
    return hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), held.encode("utf-8"))


def expires_at(created_at: datetime, ttl_s: float) -> datetime:
    return created_at + timedelta(seconds=ttl_s)


def is_live(expires: datetime, now: datetime) -> bool:
    """A session lets its holder in strictly before its expiry."""
    return now < expires


def local_next(target: str | None) -> str:
    """Where to go after signing in: `target` when it is a path on this site, else the home page.

    Only "/" followed by anything but a second "/" or a backslash (browsers
    read "/\\evil.example" as "//evil.example"): no scheme, no host, no
    control characters, bounded length. Anything else is an open redirect."""
    if target is None or not 0 < len(target) <= MAX_NEXT_CHARS:
        return HOME
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return HOME
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in target):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return HOME
    return target


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A live session: whose key it is (checked again on every request) and its CSRF token."""

    principal: Principal
    csrf_token: str
    expires_at: datetime
