"""How the sinks retry (pure): which answers to retry, and how long to wait before the next try.

A retry resends the same events with the same `event_id`s, so the pool
counts a repeat once (contract section 1); that is what makes retrying an
unclear outcome (a timeout, a 500) safe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum

from shared.backoff import Backoff

__all__ = ["Outcome", "RetryPolicy", "classify", "retry_after_s"]


class Outcome(Enum):
    DONE = "done"
    PARTIAL = "partial"  # 207: some events were taken, the answer names the others
    RETRY = "retry"  # 429, 503, other 5xx: the same request again, later
    REFUSED = "refused"  # any other 4xx: resending cannot help (a bug, or a bad key)


def classify(status: int) -> Outcome:
    if status == 207:
        return Outcome.PARTIAL
    if 200 <= status < 300:
        return Outcome.DONE
    if status in (408, 425, 429) or status >= 500:
        return Outcome.RETRY
    return Outcome.REFUSED


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date); None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass(frozen=True)
class RetryPolicy:
    """At most `max_attempts` tries of one request; waits double from `initial_s` to `max_s`,
    and a server's Retry-After is honoured (up to `max_retry_after_s`)."""

    max_attempts: int = 30
    initial_s: float = 0.5
    max_s: float = 30.0
    max_retry_after_s: float = 300.0

    def backoff(self) -> Backoff:
        return Backoff(self.initial_s, self.max_s)

    def delay_s(self, backoff: Backoff, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        return backoff.next()
