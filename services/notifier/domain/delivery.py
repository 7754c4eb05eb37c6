"""What happens after an attempt to deliver, and how fast a channel may be sent to (pure).

- An attempt that worked is final. One that failed is tried again only when
  waiting can cure it (timeouts, connection errors, 5xx, 429: `retriable`),
  up to `max_attempts`, after a delay that doubles from `initial_s` up to
  `max_s` with equal jitter (half fixed, half random, so retries of many
  notifications do not arrive in step), or after the destination's own
  `Retry-After` when it gave one (capped). Anything else is dead at once:
  a 400 will be a 400 again.
- A channel takes at most `per_minute` notifications a minute, in bursts of
  up to a tenth of that (at least one): a token bucket, time passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["RetryPolicy", "TokenBucket", "Verdict", "judge"]


class Verdict(StrEnum):
    SENT = "sent"
    RETRY = "failed"  # as the attempt log names it: failed, to be tried again
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    initial_s: float
    max_s: float
    retry_after_max_s: float

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial_s <= 0 or self.max_s < self.initial_s or self.retry_after_max_s <= 0:
            raise ValueError(f"not a retry policy: {self!r}")

    def delay_s(self, attempt: int, retry_after_s: float | None, jitter: float) -> float:
        """The wait after failed attempt `attempt` (1 = the first); `jitter` in [0, 1)."""
        if retry_after_s is not None and retry_after_s >= 0:
            return min(retry_after_s, self.retry_after_max_s)
        backoff = min(self.max_s, self.initial_s * 2 ** min(attempt - 1, 62))
        return backoff / 2 + backoff / 2 * jitter


def judge(*, ok: bool, retriable: bool, attempt: int, retry_after_s: float | None, policy: RetryPolicy,
          jitter: float) -> tuple[Verdict, float]:
    """(verdict, seconds until the next attempt; 0 unless RETRY)."""
    if ok:
        return Verdict.SENT, 0.0
    if not retriable or attempt >= policy.max_attempts:
        return Verdict.DEAD, 0.0
    return Verdict.RETRY, policy.delay_s(attempt, retry_after_s, jitter)


@dataclass(slots=True)
class TokenBucket:
    per_minute: float
    tokens: float
    updated_ms: int

    @classmethod
    def full(cls, per_minute: float, now_ms: int) -> TokenBucket:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        bucket = cls(per_minute, 0.0, now_ms)
        bucket.tokens = bucket.capacity
        return bucket

    @property
    def capacity(self) -> float:
        return max(1.0, self.per_minute / 10)

    def take(self, now_ms: int) -> float:
        """Take one token: 0 when taken, else the seconds until one is there (nothing taken)."""
        elapsed_ms = max(0, now_ms - self.updated_ms)
        self.tokens = min(self.capacity, self.tokens + elapsed_ms * self.per_minute / 60_000)
        self.updated_ms = max(self.updated_ms, now_ms)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) * 60.0 / self.per_minute
