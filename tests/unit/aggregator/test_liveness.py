"""Liveness on simulated Poisson share streams (seeded), and connection events."""

from __future__ import annotations

import math
import random

import pytest

from services.aggregator.domain.liveness import Liveness
from services.aggregator.domain.minutes import minute_start

from .samples import HOUR, MIN, T0_MS

pytestmark = pytest.mark.unit

W = ("main", "m1", "w1")


def poisson_times(rng: random.Random, rate_per_s: float, start_ms: int, end_ms: int) -> list[int]:
    out: list[int] = []
    t = float(start_ms)
    while True:
        t += rng.expovariate(rate_per_s) * 1000.0
        if t >= end_ms:
            return out
        out.append(int(t))


def feed(live: Liveness, ts_ms: int, batched: bool, difficulty: float = 0.0) -> None:
    if batched:  # the aggregator's path: one call per folded worker-minute
        live.observe_minute(W, minute_start(ts_ms), 1, ts_ms, 1 if difficulty else 0, difficulty)
    else:
        live.observe_share(W, ts_ms, difficulty or None)


def run_stream(
    live: Liveness, times: list[int], batched: bool, difficulty: float | list[float] = 0.0
) -> int:
    """Feed shares in order; return how often the worker looked offline just before one."""
    flaps = 0
    for i, ts in enumerate(times):
        if live.last_share_ms(W) is not None and not live.is_online(W, ts - 1):
            flaps += 1
        feed(live, ts, batched, difficulty if isinstance(difficulty, float) else difficulty[i])
    return flaps


@pytest.mark.parametrize("difficulty", [0.0, 512.0])  # without / with accepted work
@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize(
    ("rate_per_s", "bound_range_s"),
    [
        (5.0, (60, 60)),  # fast: K / rate = 2.8 s, clamped to the 60 s floor
        (1.0, (60, 60)),
        (0.1, (100, 200)),  # 1 share / 10 s: about 140 s
    ],
)
def test_worker_that_stops_is_offline_within_its_bound(
    batched: bool, rate_per_s: float, bound_range_s: tuple[int, int], difficulty: float
) -> None:
    rng = random.Random(11)
    live = Liveness()
    times = poisson_times(rng, rate_per_s, T0_MS, T0_MS + HOUR)
    assert run_stream(live, times, batched, difficulty) == 0
    last = times[-1]
    bound = live.detection_bound_ms(W)
    assert bound is not None
    assert bound_range_s[0] * 1000 <= bound <= bound_range_s[1] * 1000
    assert live.offline_deadline_ms(W) == last + bound
    assert live.is_online(W, last + bound)
    assert not live.is_online(W, last + bound + 1)


@pytest.mark.parametrize("difficulty", [0.0, 512.0])
@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3, 22, 258])  # 22 and 258 start with quick shares
def test_slow_worker_is_never_flapped(batched: bool, seed: int, difficulty: float) -> None:
    rng = random.Random(seed)
    live = Liveness()
    times = poisson_times(rng, 1 / 60, T0_MS, T0_MS + 6 * HOUR)  # 1 share a minute, 6 hours
    assert len(times) > 300
    assert run_stream(live, times, batched, difficulty) == 0
    bound = live.detection_bound_ms(W)
    assert bound is not None and 12 * MIN <= bound <= 25 * MIN  # K / rate = 14 min, made safer
    assert not live.is_online(W, times[-1] + bound + 1)  # and it is still caught when it stops


def test_bound_follows_k_over_rate() -> None:
    live = Liveness(k=14.0, floor_ms=1, ceiling_ms=10 * HOUR)
    for i in range(601):  # exactly one share every 2 s: 600 gaps
        live.observe_share(W, T0_MS + 2_000 * i)
    shrink = 1 - 1 / math.sqrt(600)  # one standard error below the measured rate
    assert live.rate_per_s(W) == pytest.approx(0.5 * shrink, rel=1e-9)
    assert live.detection_bound_ms(W) == pytest.approx(28_000 / shrink, abs=1)
    assert math.exp(-14) < 1e-6  # the false-alarm rate per share gap that K = 14 buys


@pytest.mark.parametrize("seed", range(5))
def test_vardiff_raise_does_not_flap(seed: int) -> None:
    # 1 share / 10 s at difficulty 1000 for 20 min, then the pool raises the
    # difficulty 4x: the same hashrate now yields 1 share / 40 s.
    rng = random.Random(seed)
    before = poisson_times(rng, 0.1, T0_MS, T0_MS + 20 * MIN)
    after = poisson_times(rng, 0.025, T0_MS + 20 * MIN, T0_MS + 3 * HOUR)
    live = Liveness()
    diffs = [1000.0] * len(before) + [4000.0] * len(after)
    assert run_stream(live, before + after, True, diffs) == 0
    rate = live.rate_per_s(W)
    assert rate is not None and 0.5 * 0.025 < rate < 0.025  # the new rate, conservatively


def test_new_worker_without_rate_gets_the_ceiling() -> None:
    live = Liveness(floor_ms=60_000, ceiling_ms=30 * MIN)
    for i in range(10):  # ten shares a second apart: 9 gaps, too few to trust
        live.observe_share(W, T0_MS - 9_000 + i * 1_000)
    assert live.rate_per_s(W) is None
    assert live.detection_bound_ms(W) == 30 * MIN
    assert live.is_online(W, T0_MS + 30 * MIN)
    assert not live.is_online(W, T0_MS + 30 * MIN + 1)


def test_unknown_worker() -> None:
    live = Liveness()
    assert not live.is_online(W, T0_MS)
    assert live.offline_deadline_ms(W) is None
    assert live.detection_bound_ms(W) is None


def test_disconnect_with_another_connection_left_keeps_it_online() -> None:
    live = Liveness()
    live.observe_connection(W, "A", "connected", T0_MS)
    live.observe_connection(W, "B", "connected", T0_MS + 1)
    live.observe_share(W, T0_MS + 2)
    live.observe_connection(W, "A", "disconnected", T0_MS + 3)
    assert live.is_online(W, T0_MS + 4)
    live.observe_connection(W, "B", "disconnected", T0_MS + 5)
    assert not live.is_online(W, T0_MS + 6)  # at once, long before the share deadline
    assert live.offline_deadline_ms(W) == T0_MS + 5


def test_disconnect_without_another_connection_is_offline_at_once() -> None:
    live = Liveness()
    live.observe_share(W, T0_MS)  # connect event never seen
    live.observe_connection(W, "A", "disconnected", T0_MS + 1_000)
    assert not live.is_online(W, T0_MS + 1_001)
    live.observe_share(W, T0_MS + 500)  # a late share from before the disconnect
    assert not live.is_online(W, T0_MS + 1_001)
    live.observe_share(W, T0_MS + 2_000)  # a share after it: back (its connect got lost)
    assert live.is_online(W, T0_MS + 2_001)


def test_connection_events_in_any_arrival_order() -> None:
    for order in ([("connected", 1), ("disconnected", 2)], [("disconnected", 2), ("connected", 1)]):
        live = Liveness()
        for state, ts in order:
            live.observe_connection(W, "A", state, T0_MS + ts)  # type: ignore[arg-type]
        assert not live.is_online(W, T0_MS + 3)
    live = Liveness()
    live.observe_connection(W, "A", "connected", T0_MS + 5)
    live.observe_connection(W, "A", "disconnected", T0_MS + 5)  # a tie: disconnected wins
    assert not live.is_online(W, T0_MS + 6)


def test_connected_worker_is_online_before_its_first_share() -> None:
    live = Liveness(ceiling_ms=30 * MIN)
    live.observe_connection(W, "A", "connected", T0_MS)
    assert live.is_online(W, T0_MS)
    assert live.is_online(W, T0_MS + 30 * MIN)
    assert not live.is_online(W, T0_MS + 30 * MIN + 1)  # connected but never hashing
    live.observe_connection(W, "A", "connected", T0_MS + HOUR)  # a reconnect is activity
    assert live.is_online(W, T0_MS + HOUR + 1)


def test_active_workers_and_miners_per_pool() -> None:
    live = Liveness(ceiling_ms=10 * MIN)
    for pool, miner, worker in [("main", "a", "1"), ("main", "a", "2"), ("main", "b", "1"), ("alt", "c", "1")]:
        live.observe_share((pool, miner, worker), T0_MS)
    live.observe_share(("main", "d", "1"), T0_MS - HOUR)  # long gone
    assert live.active_workers(T0_MS + 1, "main") == 3
    assert live.active_miners(T0_MS + 1, "main") == 2
    assert live.active_workers(T0_MS + 1) == 4
    assert live.active_miners(T0_MS + 1, "alt") == 1
    assert live.prune(T0_MS + 1, retention_ms=30 * MIN) == 1
    assert len(live) == 4


def test_status_is_what_a_worker_row_persists_in_one_read() -> None:
    live = Liveness()
    assert live.status(W) is None
    live.observe_minute(W, minute_start(T0_MS), 3, T0_MS + 5_000, 3, 96.0)
    assert live.status(W) == (live.offline_deadline_ms(W), T0_MS + 5_000, {}, 0)
    live.observe_connection(W, "n1", "connected", T0_MS + 6_000)
    live.observe_connection(W, "n2", "disconnected", T0_MS + 7_000)
    deadline, last, nodes, connected_ms = live.status(W)  # type: ignore[misc]
    assert (deadline, last, connected_ms) == (live.offline_deadline_ms(W), T0_MS + 5_000, T0_MS + 6_000)
    assert nodes == {"n1": (T0_MS + 6_000, True), "n2": (T0_MS + 7_000, False)}
    nodes["n3"] = (0, True)  # a copy: the caller's rows never alias the state
    live.observe_connection(W, "n1", "disconnected", T0_MS + 8_000)
    assert live.status(W) == (T0_MS + 8_000, T0_MS + 5_000,
                              {"n1": (T0_MS + 8_000, False), "n2": (T0_MS + 7_000, False)}, T0_MS + 6_000)
    # A worker known by its shares alone: no connection state.
    only_share = ("main", "m1", "w2")
    live.observe_share(only_share, T0_MS)
    assert live.status(only_share)[1:] == (T0_MS, {}, 0)  # type: ignore[index]
