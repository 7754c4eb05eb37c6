"""The simulated pool: seeded, contract-valid, and statistically what it claims."""

from __future__ import annotations

import math

import orjson
import pytest

from chimera.simulator import HASHES_PER_DIFFICULTY, SimulatedPool
from shared.events import decode_batch

pytestmark = pytest.mark.unit

START_MS = 1_790_000_000_000


def test_same_seed_same_stream() -> None:
    first = SimulatedPool(seed=7).tick(START_MS, 10_000)
    second = SimulatedPool(seed=7).tick(START_MS, 10_000)
    other = SimulatedPool(seed=8).tick(START_MS, 10_000)
    assert first == second
    assert first != other


def test_every_event_satisfies_the_contract() -> None:
    pool = SimulatedPool(seed=3, block_every_s=5)
    events = pool.connect_events(START_MS) + pool.tick(START_MS, 60_000)
    decoded = decode_batch(orjson.dumps(events), max_events=len(events), now_ms=START_MS + 60_000)
    assert len(decoded) == len(events)
    assert {e.type for e in decoded} == {"miner", "share", "block"}
    assert len({e.event_id for e in decoded}) == len(decoded)


def test_events_are_in_event_time_order_within_the_tick() -> None:
    events = SimulatedPool(seed=5).tick(START_MS, 30_000)
    times = [e["ts"] for e in events]
    assert times == sorted(times)


def test_share_rate_matches_hashrate_over_difficulty() -> None:
    pool = SimulatedPool(seed=11, miners=10)
    duration_s = 600
    shares = [e for e in pool.tick(START_MS, duration_s * 1000) if e["type"] == "share"]
    expected = sum(w.hashrate_hs / (w.difficulty * HASHES_PER_DIFFICULTY) for w in pool.workers) * duration_s
    # Poisson: 5 standard deviations either side is a false failure once in ~1.7 million runs.
    assert abs(len(shares) - expected) < 5 * math.sqrt(expected)
    # And the contract's hashrate formula recovers the simulated hashrate.
    difficulty = sum(float(e["difficulty"]) for e in shares)  # type: ignore[arg-type]
    estimate = difficulty * HASHES_PER_DIFFICULTY / duration_s
    assert estimate == pytest.approx(pool.pool_hashrate_hs, rel=0.1)


def test_blocks_come_at_the_configured_pace() -> None:
    pool = SimulatedPool(seed=13, block_every_s=10)
    blocks = [e for e in pool.tick(START_MS, 1_000_000) if e["type"] == "block"]
    expected = 100  # 1,000 s at one block per 10 s
    assert abs(len(blocks) - expected) < 5 * math.sqrt(expected)
    heights = [b["height"] for b in blocks]
    assert heights == sorted(heights) and len(set(heights)) == len(heights)
