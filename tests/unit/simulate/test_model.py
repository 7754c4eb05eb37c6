"""The pool model: seeded, contract-valid, realistic in its spread, and its hashrate is what it claims.

Statistical checks run on fixed seeds, so each either always passes or always
fails; the bounds say how unlikely a failure would be for a correct
simulator on a random seed, which is what makes passing seeds meaningful.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import orjson
import pytest

from chimera.simulate import (
    HASHES_PER_DIFFICULTY,
    PoolConfig,
    SimulatedPool,
    VardiffConfig,
)
from shared.confidence import hashrate_interval
from shared.events import decode_batch
from shared.hashrate import hashrate_hs
from tests.unit.simulate.helpers import (
    HOUR_MS,
    MINUTE_MS,
    START_MS,
    accepted_difficulties,
    simulate,
    true_mean_hashrate,
    ts_ms,
)

pytestmark = pytest.mark.unit

SMALL = PoolConfig(miners=6)


def test_same_seed_gives_the_same_stream_and_another_seed_another() -> None:
    first = simulate(SMALL, seed=7, span_ms=10 * MINUTE_MS)
    second = simulate(SMALL, seed=7, span_ms=10 * MINUTE_MS)
    other = simulate(SMALL, seed=8, span_ms=10 * MINUTE_MS)
    assert first.events == second.events and first.metrics == second.metrics
    assert first.performance == second.performance and first.changes == second.changes
    assert len(first.events) > 1000
    assert first.events != other.events
    assert [w.hashrate_hs for w in first.pool.workers] != [w.hashrate_hs for w in other.pool.workers]


@pytest.mark.parametrize("steps", [
    [30 * MINUTE_MS],
    [MINUTE_MS] * 30,
    [1_000] * 59 + [29 * MINUTE_MS - 59_000 + MINUTE_MS],
    [7_777, 0, 123_456, 1, 30 * MINUTE_MS - 7_777 - 123_456 - 1],
], ids=["one span", "minutes", "seconds then the rest", "ragged"])
def test_how_time_is_cut_into_spans_does_not_change_the_stream(steps: list[int]) -> None:
    assert sum(steps) == 30 * MINUTE_MS
    whole = simulate(SMALL, seed=3, span_ms=30 * MINUTE_MS)
    cut = simulate(SMALL, seed=3, steps=steps)
    assert cut.events == whole.events
    assert cut.metrics == whole.metrics and cut.performance == whole.performance
    assert cut.changes == whole.changes


def test_spans_must_follow_one_another() -> None:
    pool = SimulatedPool(SMALL)
    pool.advance(START_MS, START_MS + 1_000)
    with pytest.raises(ValueError, match="follow one another"):
        pool.advance(START_MS + 2_000, START_MS + 3_000)
    with pytest.raises(ValueError, match="already started"):
        pool.start(START_MS)


def test_every_event_satisfies_the_contract() -> None:
    config = PoolConfig(miners=8, block_every_ms=30_000, orphan_rate=0.5, orphan_after_ms=10_000,
                        confirm_after_ms=20_000, reject_rate=0.1, stale_rate=0.1)
    run = simulate(config, seed=5, span_ms=20 * MINUTE_MS)
    decoded = decode_batch(orjson.dumps(run.events), max_events=len(run.events),
                           now_ms=START_MS + 20 * MINUTE_MS)
    assert len(decoded) == len(run.events)
    kinds = {(e.type, getattr(e, "status", None) or getattr(e, "state", None)) for e in decoded}
    assert kinds == {("miner", "connected"), ("share", "accepted"), ("share", "rejected"), ("share", "stale"),
                     ("block", "candidate"), ("block", "confirmed"), ("block", "orphaned")}
    ids = [e.event_id for e in decoded]
    assert len(set(ids)) == len(ids)
    assert [e.ts_ms for e in decoded] == sorted(e.ts_ms for e in decoded)


def test_a_later_run_of_the_same_seed_is_the_same_stream_shifted_with_other_event_ids() -> None:
    later_ms = START_MS + 3_600_007
    first = SimulatedPool(SMALL, seed=1).events(START_MS, START_MS + 60_000)
    later = SimulatedPool(SMALL, seed=1).events(later_ms, later_ms + 60_000)
    # The ingest counts an event_id once within its dedup horizon: a rerun must not look like a replay.
    assert not {e["event_id"] for e in first} & {e["event_id"] for e in later}
    assert [ts_ms(e) + later_ms - START_MS for e in first] == [ts_ms(e) for e in later]
    assert [{**e, "event_id": "", "ts": ""} for e in first] == [{**e, "event_id": "", "ts": ""} for e in later]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_hashrates_spread_like_a_real_pool(seed: int) -> None:
    workers = SimulatedPool(PoolConfig(miners=40), seed=seed).workers
    asic = [w.hashrate_hs for w in workers if w.rig == "asic"]
    small = [w.hashrate_hs for w in workers if w.rig == "small"]
    assert asic and small
    assert all(10e12 <= h <= 500e12 for h in asic)  # rigs of tens to hundreds of TH/s
    assert all(h < 20e12 for h in small)
    assert max(asic) / min(small) > 100  # orders of magnitude apart
    assert sum(asic) > 0.9 * (sum(asic) + sum(small))  # the farms hold the hashrate
    per_miner = {w.miner for w in workers}
    assert len(per_miner) == 40 and len(workers) > 40  # farms have several workers
    assert {w.worker for w in workers if w.miner == "m1"} >= {"w1"}


# Confidence of each worker's interval. 3 seeds x ~50 workers = ~150 intervals; a correct
# simulator on random seeds misses any of them with probability <= 1.5e-4 (union bound).
WORKER_CONFIDENCE = 1 - 1e-6


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_the_contract_hashrate_of_each_worker_is_within_its_poisson_interval_of_the_truth(seed: int) -> None:
    # Vardiff held still (tolerance of 7 powers of two), so a worker's shares all carry one
    # difficulty and the Garwood interval the aggregator publishes is exact for them.
    config = PoolConfig(miners=20, vardiff=VardiffConfig(tolerance_log2=7.0))
    run = simulate(config, seed=seed, span_ms=HOUR_MS)
    start, end = START_MS, START_MS + HOUR_MS
    accepted = config.accepted_fraction
    for spec in run.pool.workers:
        difficulties = accepted_difficulties(run, spec.miner, spec.worker, start, end)
        assert len(set(difficulties)) == 1
        estimate = hashrate_hs(sum(difficulties), end - start)
        lower, upper = hashrate_interval(estimate, len(difficulties), confidence=WORKER_CONFIDENCE)
        truth = true_mean_hashrate(run.changes, spec.miner, spec.worker, start, end) * accepted
        assert truth == pytest.approx(spec.hashrate_hs * accepted)
        assert upper is not None and lower <= truth <= upper, (spec.miner, spec.worker, estimate / truth)


@pytest.mark.parametrize("seed", [21, 22])
def test_the_pool_hashrate_with_vardiff_at_work_matches_the_truth_closely(seed: int) -> None:
    # Shares of varying difficulty: the sum is compound Poisson, variance estimated by sum(d^2).
    # 5 standard deviations: a false failure once in ~1.7 million seeds. With ~30,000 shares
    # an hour that is a bound of about 3%: a simulator off by 5% fails it.
    run = simulate(PoolConfig(miners=20), seed=seed, span_ms=HOUR_MS)
    start, end = START_MS, START_MS + HOUR_MS
    difficulties = accepted_difficulties(run, None, None, start, end)
    truth = sum(true_mean_hashrate(run.changes, w.miner, w.worker, start, end) for w in run.pool.workers)
    truth *= run.pool.config.accepted_fraction
    estimate = hashrate_hs(sum(difficulties), end - start)
    sigma = math.sqrt(sum(d * d for d in difficulties)) * HASHES_PER_DIFFICULTY / ((end - start) / 1000)
    assert abs(estimate - truth) < 5 * sigma
    assert 5 * sigma < 0.05 * truth


@pytest.mark.parametrize(("make", "message"), [
    (lambda: PoolConfig(miners=0), "miners must be between"),
    (lambda: PoolConfig(pool="main pool"), "names are 1-64"),
    (lambda: PoolConfig(nodes=()), "at least one node"),
    (lambda: PoolConfig(orphan_rate=1.5), "orphan_rate must be in"),
    (lambda: PoolConfig(reject_rate=0.6, stale_rate=0.5), "add up to less than 1"),
    (lambda: PoolConfig(network_difficulty=0.0), "network_difficulty must be"),
    (lambda: PoolConfig(network_difficulty=math.inf), "network_difficulty must be"),
    (lambda: PoolConfig(block_every_ms=0), "block_every_ms must be"),
    (lambda: PoolConfig(run_id="x" * 41), "run_id must be"),
    (lambda: PoolConfig(run_id="has space"), "run_id must be"),
    (lambda: VardiffConfig(min_difficulty=4, max_difficulty=2), "max_difficulty must be"),
    (lambda: VardiffConfig(share_rate=0), "share_rate must be"),
    (lambda: VardiffConfig(flood_shares=4, min_shares=8), "flood_shares > min_shares"),
])
def test_configs_that_cannot_be_simulated_are_refused(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
