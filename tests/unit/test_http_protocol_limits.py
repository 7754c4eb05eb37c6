"""ConnectionLimits: per-address connection counts and the counters metrics read."""

from __future__ import annotations

import pytest

from shared.http.protocol import ConnectionLimits, GuardedH11Protocol, guarded_protocol

pytestmark = pytest.mark.unit


def limits(cap: int = 2) -> ConnectionLimits:
    return ConnectionLimits(header_timeout_s=1.0, max_connections_per_client=cap)


def test_an_address_gets_up_to_its_cap_and_no_more() -> None:
    counts = limits(cap=2)
    assert counts.acquire("10.0.0.1")
    assert counts.acquire("10.0.0.1")
    assert not counts.acquire("10.0.0.1")
    assert not counts.acquire("10.0.0.1")
    assert counts.open_connections("10.0.0.1") == 2
    assert counts.refused_total == 2


def test_addresses_are_counted_apart() -> None:
    counts = limits(cap=1)
    assert counts.acquire("10.0.0.1")
    assert counts.acquire("10.0.0.2")
    assert counts.acquire("::1")
    assert not counts.acquire("10.0.0.2")
    assert counts.open_total == 3
    assert counts.refused_total == 1


def test_a_release_makes_room_again() -> None:
    counts = limits(cap=1)
    assert counts.acquire("10.0.0.1")
    counts.release("10.0.0.1")
    assert counts.acquire("10.0.0.1")
    assert counts.refused_total == 0


def test_an_address_is_forgotten_when_its_last_connection_goes() -> None:
    counts = limits(cap=3)
    for _ in range(3):
        counts.acquire("10.0.0.1")
    counts.acquire("10.0.0.2")
    for _ in range(3):
        counts.release("10.0.0.1")
    assert counts.open_by_address == {"10.0.0.2": 1}
    counts.release("10.0.0.2")
    assert counts.open_by_address == {}
    assert counts.open_total == 0


def test_a_refused_connection_takes_no_count() -> None:
    counts = limits(cap=1)
    counts.acquire("10.0.0.1")
    counts.acquire("10.0.0.1")  # refused
    counts.release("10.0.0.1")
    assert counts.open_by_address == {}


def test_releasing_what_was_never_acquired_raises() -> None:
    counts = limits()
    with pytest.raises(LookupError):
        counts.release("10.0.0.1")
    counts.acquire("10.0.0.1")
    counts.release("10.0.0.1")
    with pytest.raises(LookupError):
        counts.release("10.0.0.1")


def test_header_timeouts_are_counted() -> None:
    counts = limits()
    counts.header_timed_out()
    counts.header_timed_out()
    assert counts.header_timeouts_total == 2


@pytest.mark.parametrize(("timeout_s", "cap"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_nonsense_limits_are_refused(timeout_s: float, cap: int) -> None:
    with pytest.raises(ValueError):
        ConnectionLimits(header_timeout_s=timeout_s, max_connections_per_client=cap)


def test_each_factory_call_binds_its_own_limits() -> None:
    first, second = limits(), limits()
    first_class, second_class = guarded_protocol(first), guarded_protocol(second)
    assert first_class.limits is first
    assert second_class.limits is second
    assert issubclass(first_class, GuardedH11Protocol)

