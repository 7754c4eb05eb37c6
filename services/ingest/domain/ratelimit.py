"""Per-API-key rate limiting: one token bucket per key. Pure logic, clock injected.

A key may make `rate` requests per second on average and bursts of up to
`rate * burst_s` requests (at least one). A key's own limit (`api_keys.
rate_limit_per_second`) overrides the service default.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from shared.access import Principal

Clock = Callable[[], float]

# Past this many tracked keys, buckets that have refilled completely are
# forgotten (a full bucket and a fresh one behave the same).
_PRUNE_ABOVE: Final = 10_000


class TokenBucket:
    __slots__ = ("capacity", "rate_per_s", "tokens", "updated_s")

    def __init__(self, rate_per_s: float, capacity: float, now_s: float) -> None:
        if rate_per_s <= 0 or capacity < 1:
            raise ValueError("a bucket needs a positive rate and room for one token")
        self.rate_per_s = rate_per_s
        self.capacity = capacity
        self.tokens = capacity
        self.updated_s = now_s

    def _refill(self, now_s: float) -> None:
        # max(): a clock that steps back must not drain the bucket.
        elapsed_s = max(0.0, now_s - self.updated_s)
        self.tokens = min(self.capacity, self.tokens + elapsed_s * self.rate_per_s)
        self.updated_s = max(self.updated_s, now_s)

    def take(self, now_s: float) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available."""
        self._refill(now_s)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s

    def full_at(self, now_s: float) -> bool:
        self._refill(now_s)
        return self.tokens >= self.capacity


class KeyRateLimiter:
    """Implements `shared.http.auth.RateLimiter`."""

    def __init__(
        self, *, default_per_second: float, burst_s: float, clock: Clock = time.monotonic
    ) -> None:
        if default_per_second <= 0 or burst_s <= 0:
            raise ValueError("rate and burst must be positive")
        self._default_per_second = default_per_second
        self._burst_s = burst_s
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def limit_for(self, principal: Principal) -> float:
        return principal.rate_limit_per_second or self._default_per_second

    def retry_after_s(self, principal: Principal) -> float:
        now_s = self._clock()
        rate = self.limit_for(principal)
        bucket = self._buckets.get(principal.key_id)
        if bucket is None or bucket.rate_per_s != rate:
            # New key, or its limit was changed: start from a full bucket at the new rate.
            if len(self._buckets) >= _PRUNE_ABOVE:
                self._prune(now_s)
            bucket = TokenBucket(rate, max(1.0, rate * self._burst_s), now_s)
            self._buckets[principal.key_id] = bucket
        return bucket.take(now_s)

    def _prune(self, now_s: float) -> None:
        for key_id in [k for k, b in self._buckets.items() if b.full_at(now_s)]:
            del self._buckets[key_id]

    @property
    def tracked_keys(self) -> int:
        return len(self._buckets)


class AddressFailureLimiter:
    """Implements `shared.http.auth.FailureLimiter`: failed authentications per client address.

    Each address has a bucket of `burst` failures refilled at `per_second`;
    while it is empty the address is blocked (`blocked_for_s` > 0), whatever
    key it presents. Memory is bounded: past `max_addresses`, refilled buckets
    are forgotten first, then the oldest; forgetting an address can only let
    it try again sooner, never lock anyone out.
    """

    def __init__(self, *, per_second: float, burst: int, max_addresses: int = 100_000,
                 clock: Clock = time.monotonic) -> None:
        if per_second <= 0 or burst < 1 or max_addresses < 1:
            raise ValueError("rate, burst and max_addresses must be positive")
        self._per_second = per_second
        self._burst = float(burst)
        self._max_addresses = max_addresses
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def blocked_for_s(self, address: str) -> float:
        bucket = self._buckets.get(address)
        if bucket is None:
            return 0.0
        now_s = self._clock()
        if bucket.full_at(now_s):
            del self._buckets[address]
            return 0.0
        return 0.0 if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / self._per_second

    def failed(self, address: str) -> None:
        now_s = self._clock()
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= self._max_addresses:
                self._make_room(now_s)
            bucket = TokenBucket(self._per_second, self._burst, now_s)
            self._buckets[address] = bucket
        bucket.take(now_s)

    def _make_room(self, now_s: float) -> None:
        for address in [a for a, b in self._buckets.items() if b.full_at(now_s)]:
            del self._buckets[address]
        while len(self._buckets) >= self._max_addresses:
            del self._buckets[next(iter(self._buckets))]

    @property
    def tracked_addresses(self) -> int:
        return len(self._buckets)
