"""The per-key token bucket, on a hand-driven clock."""

from __future__ import annotations

import pytest

from services.ingest.domain.ratelimit import AddressFailureLimiter, KeyRateLimiter, TokenBucket
from shared.http.auth import Principal, Scope

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def key(key_id: int = 1, rate: float | None = None) -> Principal:
    return Principal(f"key-{key_id}", "k", frozenset({Scope.INGEST}), rate)


def test_burst_then_refusal_with_time_to_next_token() -> None:
    clock = FakeClock()
    limiter = KeyRateLimiter(default_per_second=10, burst_s=0.5, clock=clock)
    assert [limiter.retry_after_s(key()) for _ in range(5)] == [0.0] * 5
    assert limiter.retry_after_s(key()) == pytest.approx(0.1)
    clock.now_s += 0.1
    assert limiter.retry_after_s(key()) == 0.0
    assert limiter.retry_after_s(key()) > 0


def test_sustained_rate_is_the_limit() -> None:
    clock = FakeClock()
    limiter = KeyRateLimiter(default_per_second=4, burst_s=1, clock=clock)
    granted = 0
    for _ in range(400):  # 10 s in steps of 25 ms
        granted += limiter.retry_after_s(key()) == 0.0
        clock.now_s += 0.025
    assert 40 <= granted <= 44  # 4/s for 10 s, plus the initial burst of 4


def test_a_keys_own_limit_overrides_the_default() -> None:
    clock = FakeClock()
    limiter = KeyRateLimiter(default_per_second=100, burst_s=1, clock=clock)
    slow = key(2, rate=1.0)
    assert limiter.retry_after_s(slow) == 0.0
    assert limiter.retry_after_s(slow) == pytest.approx(1.0)
    assert all(limiter.retry_after_s(key(3)) == 0.0 for _ in range(100))


def test_keys_have_separate_buckets() -> None:
    limiter = KeyRateLimiter(default_per_second=1, burst_s=1, clock=FakeClock())
    assert limiter.retry_after_s(key(1)) == 0.0
    assert limiter.retry_after_s(key(1)) > 0
    assert limiter.retry_after_s(key(2)) == 0.0


def test_changed_limit_takes_effect() -> None:
    limiter = KeyRateLimiter(default_per_second=1, burst_s=1, clock=FakeClock())
    assert limiter.retry_after_s(key(1, rate=1)) == 0.0
    assert limiter.retry_after_s(key(1, rate=1)) > 0
    assert limiter.retry_after_s(key(1, rate=50)) == 0.0


def test_a_clock_stepping_back_does_not_drain_or_refill() -> None:
    bucket = TokenBucket(rate_per_s=1, capacity=1, now_s=100.0)
    assert bucket.take(100.0) == 0.0
    assert bucket.take(90.0) == pytest.approx(1.0)
    assert bucket.take(100.5) == pytest.approx(0.5)
    assert bucket.take(101.0) == 0.0


def test_burst_holds_at_least_one_token() -> None:
    limiter = KeyRateLimiter(default_per_second=0.1, burst_s=1, clock=FakeClock())
    assert limiter.retry_after_s(key()) == 0.0
    assert limiter.retry_after_s(key()) == pytest.approx(10.0)


def test_full_buckets_are_forgotten_past_many_keys() -> None:
    clock = FakeClock()
    limiter = KeyRateLimiter(default_per_second=1000, burst_s=1, clock=clock)
    for key_id in range(10_000):
        limiter.retry_after_s(key(key_id))
    clock.now_s += 10  # every bucket is full again
    limiter.retry_after_s(key(10_001))
    assert limiter.tracked_keys == 1


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_nonsense_settings_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        KeyRateLimiter(default_per_second=rate, burst_s=burst)


def test_failures_block_an_address_after_its_burst_and_unblock_as_it_refills() -> None:
    clock = FakeClock()
    limiter = AddressFailureLimiter(per_second=0.5, burst=3, clock=clock)
    for _ in range(3):
        assert limiter.blocked_for_s("198.51.100.7") == 0.0
        limiter.failed("198.51.100.7")
    assert limiter.blocked_for_s("198.51.100.7") == pytest.approx(2.0)
    assert limiter.blocked_for_s("198.51.100.8") == 0.0  # others are not affected
    clock.now_s += 2.0
    assert limiter.blocked_for_s("198.51.100.7") == 0.0
    limiter.failed("198.51.100.7")
    assert limiter.blocked_for_s("198.51.100.7") == pytest.approx(2.0)


def test_checking_takes_nothing() -> None:
    clock = FakeClock()
    limiter = AddressFailureLimiter(per_second=1, burst=1, clock=clock)
    for _ in range(100):
        assert limiter.blocked_for_s("a") == 0.0
    assert limiter.tracked_addresses == 0


def test_refilled_addresses_are_forgotten_and_memory_is_bounded() -> None:
    clock = FakeClock()
    limiter = AddressFailureLimiter(per_second=1, burst=2, max_addresses=10, clock=clock)
    for i in range(1000):
        limiter.failed(f"client-{i}")
    assert limiter.tracked_addresses <= 10
    clock.now_s += 10
    limiter.blocked_for_s("client-999")  # refilled: dropped on sight
    assert limiter.tracked_addresses <= 9
