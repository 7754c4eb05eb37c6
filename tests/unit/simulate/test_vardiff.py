"""Vardiff: the difficulty settles where a worker submits about the target share rate."""

from __future__ import annotations

import math
import random

import pytest

from chimera.simulate import HASHES_PER_DIFFICULTY, PoolConfig, VardiffConfig
from chimera.simulate.vardiff import Vardiff, ideal_difficulty
from tests.unit.simulate.helpers import (
    HOUR_MS,
    MINUTE_MS,
    START_MS,
    num,
    simulate,
    ts_ms,
)

pytestmark = pytest.mark.unit

TH = 1e12


def drive(vardiff: Vardiff, hashrate_hs: float, rng: random.Random, from_ms: float, until_ms: float) -> int:
    """Feed the vardiff a Poisson share stream at `hashrate_hs` over [from_ms, until_ms); return the shares."""
    shares = 0
    next_share = from_ms + rng.expovariate(hashrate_hs / (vardiff.difficulty * HASHES_PER_DIFFICULTY) / 1000)
    while True:
        t = min(next_share, vardiff.next_check_ms)
        if t >= until_ms:
            return shares
        if t == next_share:
            shares += 1
            vardiff.on_share(t)
        else:
            vardiff.on_check(t)
        # Memoryless: after any event the next share is drawn afresh at the current difficulty.
        next_share = t + rng.expovariate(hashrate_hs / (vardiff.difficulty * HASHES_PER_DIFFICULTY) / 1000)


@pytest.mark.parametrize(("hashrate_hs", "start"), [
    (200 * TH, 1.0),  # a big rig on a pool that starts everyone at difficulty 1: a flood, then a jump
    (200 * TH, 2.0**40),  # far too hard: no shares, so it steps down by four each interval
    (0.5 * TH, 65_536.0),  # a Bitaxe on an ASIC-sized start difficulty
    (50e9, 1.0),  # a USB stick, slightly too easy
    (95 * TH, 131_072.0),  # already right
])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vardiff_converges_to_the_target_share_rate(hashrate_hs: float, start: float, seed: int) -> None:
    config = VardiffConfig(share_rate=0.2)
    vardiff = Vardiff(config, start, 0.0)
    rng = random.Random(seed)
    drive(vardiff, hashrate_hs, rng, 0, 30 * MINUTE_MS)  # warm-up: a few minutes are enough
    ideal = hashrate_hs / (config.share_rate * HASHES_PER_DIFFICULTY)
    # Retargets only past one power of two, to a power of two: then within a factor 2 of ideal.
    assert abs(math.log2(vardiff.difficulty / ideal)) <= 1.5
    assert math.log2(vardiff.difficulty).is_integer()
    rate = drive(vardiff, hashrate_hs, rng, 30 * MINUTE_MS, 2 * HOUR_MS) / (90 * 60)
    # Over 1.5 h at ~0.2/s (~1,000 shares, Poisson sd ~3%): within a factor 2 of the target
    # plus a 20% margin (over 6 sd) for the noise.
    assert 0.2 / 2 / 1.2 < rate < 0.2 * 2 * 1.2


def test_ideal_difficulty_rounds_to_the_ladder_and_clamps() -> None:
    config = VardiffConfig(share_rate=0.2, min_difficulty=16, max_difficulty=2.0**20)
    assert ideal_difficulty(100 * TH, config) == 2.0**17  # 116,415 -> the nearest power of two
    assert ideal_difficulty(10_000 * TH, config) == 2.0**20  # clamped down to the pool's maximum
    assert ideal_difficulty(1e9, config) == 16  # 1.16 -> clamped up to the pool's minimum
    exact = VardiffConfig(share_rate=0.2, rounding="exact")
    assert ideal_difficulty(100 * TH, exact) == pytest.approx(100 * TH / (0.2 * HASHES_PER_DIFFICULTY))


def test_a_worker_without_shares_is_stepped_down_by_four_each_interval() -> None:
    config = VardiffConfig(retarget_ms=60_000)
    vardiff = Vardiff(config, 2.0**20, 0.0)
    for check in range(1, 4):
        vardiff.on_check(check * 60_000)
    assert vardiff.difficulty == 2.0**14


@pytest.mark.parametrize("seed", [31, 32])
def test_in_the_pool_every_worker_settles_from_a_bad_start_and_the_pool_meets_the_target(seed: int) -> None:
    config = PoolConfig(miners=12, vardiff=VardiffConfig(share_rate=0.2, start_difficulty=1024.0))
    run = simulate(config, seed=seed, span_ms=90 * MINUTE_MS)
    after = START_MS + 30 * MINUTE_MS
    seconds = 60 * 60
    total = 0
    for spec in run.pool.workers:
        shares = [e for e in run.shares(spec.miner, spec.worker) if ts_ms(e) >= after]
        total += len(shares)
        assert all(math.log2(num(e["difficulty"])).is_integer() for e in shares)
        ideal = spec.hashrate_hs / (0.2 * HASHES_PER_DIFFICULTY)
        assert abs(math.log2(num(shares[-1]["difficulty"]) / ideal)) <= 1.5, spec
        # ~720 shares an hour per worker: within a factor 2 of the target, plus a 20% margin (5+ sd).
        assert 0.2 / 2 / 1.2 < len(shares) / seconds < 0.2 * 2 * 1.2, spec
    # The pool as a whole: workers sit on both sides of their ideal level, so the mean is close.
    assert 0.8 < total / seconds / len(run.pool.workers) / 0.2 < 1.25
