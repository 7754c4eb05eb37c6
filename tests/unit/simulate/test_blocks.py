"""Blocks: found by accepted shares with probability difficulty / network difficulty, some orphaned."""

from __future__ import annotations

import math

import pytest

from chimera.simulate import PoolConfig, SimulatedPool
from tests.unit.simulate.helpers import (
    HOUR_MS,
    MINUTE_MS,
    START_MS,
    num,
    simulate,
    ts_ms,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("seed", "block_every_ms", "orphan_rate"), [
    (51, 12_000, 0.2),  # ~300 blocks an hour
    (52, 12_000, 0.0),
    (53, 30_000, 0.5),  # ~120 blocks an hour
])
def test_blocks_come_at_the_rate_share_difficulty_over_network_difficulty_says(
    seed: int, block_every_ms: int, orphan_rate: float,
) -> None:
    config = PoolConfig(miners=15, block_every_ms=block_every_ms, orphan_rate=orphan_rate,
                        confirm_after_ms=5 * MINUTE_MS, orphan_after_ms=MINUTE_MS)
    run = simulate(config, seed=seed, span_ms=HOUR_MS)
    network = run.pool.network_difficulty
    accepted = [e for e in run.shares() if e["status"] == "accepted"]
    candidates = run.blocks("candidate")
    # Given the shares, the count of blocks is a sum of Bernoulli(d / network) draws: mean
    # sum(d) / network and variance below it. 5 sd: a false failure once in ~1.7 million seeds.
    expected = sum(num(e["difficulty"]) for e in accepted) / network
    assert expected > 100
    assert abs(len(candidates) - expected) < 5 * math.sqrt(expected)
    # ... and the network difficulty is what makes the pool find one every `block_every_ms`.
    assert abs(len(candidates) - HOUR_MS / block_every_ms) < 5 * math.sqrt(HOUR_MS / block_every_ms)
    # Every block is an accepted share whose hash met the network's target.
    winning = {(e["miner"], e["worker"], e["ts"]) for e in accepted if num(e["actual_difficulty"]) >= network}
    assert {(b["miner"], b["worker"], b["ts"]) for b in candidates} == winning
    assert all(str(b["hash"]).startswith("00000000") for b in candidates)  # below the target, as real ones
    # Heights follow event time, one by one.
    heights = [int(num(b["height"])) for b in candidates]
    assert heights == list(range(heights[0], heights[0] + len(heights)))
    # Each candidate ends confirmed or orphaned, with its own height and hash, after the set delay;
    # orphans are Binomial(n, rate): 5 sd again.
    outcomes = {b["hash"]: b for b in run.blocks() if b["status"] != "candidate"}
    orphans = 0
    for block in candidates:
        outcome = outcomes.get(block["hash"])
        if outcome is None:
            assert ts_ms(block) >= START_MS + HOUR_MS - 5 * MINUTE_MS - 1  # settles after the run's end
            continue
        assert outcome["height"] == block["height"]
        delay = MINUTE_MS if outcome["status"] == "orphaned" else 5 * MINUTE_MS
        assert ts_ms(outcome) - ts_ms(block) in (delay, delay - 1, delay + 1)  # ms truncation
        orphans += outcome["status"] == "orphaned"
    settled = len(outcomes)
    sd = math.sqrt(settled * orphan_rate * (1 - orphan_rate))
    assert abs(orphans - settled * orphan_rate) <= 5 * sd


def test_a_given_network_difficulty_is_used_as_it_is() -> None:
    pool = SimulatedPool(PoolConfig(miners=5, network_difficulty=1.5e13))
    assert pool.network_difficulty == 1.5e13
    derived = SimulatedPool(PoolConfig(miners=5, block_every_ms=600_000))
    per_second = derived.healthy_hashrate_hs * derived.config.accepted_fraction / 2**32
    assert derived.network_difficulty == pytest.approx(per_second * 600)
