"""Ground truth: a messy stream folded by the model equals a plain recount.

The stream has duplicates (retries within the horizon), shuffled arrival,
late events (minutes to 23 hours) and too-late ones (over 24 hours), and is
cut into random batches. The reference below is written plainly, event by
event, without any of the domain code's tricks.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Any

import pytest

from services.aggregator.domain.export_figures import miner_figures, pool_activity, pool_figures_from_models
from services.aggregator.domain.minutes import MinuteStats
from services.aggregator.domain.model import PoolAggregate
from services.aggregator.domain.table import MinuteTable
from services.aggregator.domain.windows import WINDOWS, minute_weight, window_range
from shared.events import ShareEvent

from .samples import HOUR, MIN, T0_MS, block, block_hash, miner_event, share

pytestmark = pytest.mark.unit

WORKERS = [("main", "alice", "rig1"), ("main", "alice", "rig2"), ("main", "bob", "default"),
           ("alt", "carol", "x")]


def make_stream(rng: random.Random) -> list[ShareEvent]:
    originals: list[ShareEvent] = []
    now = T0_MS
    for i in range(4_000):
        now += rng.randrange(0, 5_000)
        pool, miner, worker = rng.choice(WORKERS)
        ts = now
        roll = rng.random()
        if roll < 0.05:
            ts = now - rng.randrange(2 * MIN, 23 * HOUR)  # late
        elif roll < 0.07:
            ts = now - 24 * HOUR - rng.randrange(1, HOUR)  # too late (if the stream is that long)
        originals.append(share(
            max(ts, T0_MS - 30 * HOUR), pool=pool, miner=miner, worker=worker,
            difficulty=rng.choice([1.0, 3.7, 1024.0, rng.uniform(0.01, 1e6)]),
            status=rng.choice(["accepted"] * 8 + ["rejected", "stale"]),
            actual=rng.choice([None, rng.uniform(1, 1e7)]), event_id=f"e{i}",
        ))
    # the watermark must pass 24 h for too-late events to exist: a final stretch
    now += 25 * HOUR
    originals += [share(now + i, event_id=f"tail{i}", difficulty=2.0) for i in range(20)]
    arrival: list[ShareEvent] = []
    for ev in originals:
        arrival.append(ev)
        if rng.random() < 0.1:  # a retry shortly after
            arrival.insert(len(arrival) - rng.randrange(0, 3), ev)
    for i in range(0, len(arrival) - 1, 2):  # local shuffles: out of order by a few events
        if rng.random() < 0.3:
            j = min(len(arrival) - 1, i + rng.randrange(1, 6))
            arrival[i], arrival[j] = arrival[j], arrival[i]
    return arrival


def reference(arrival: list[ShareEvent]) -> tuple[list[ShareEvent], int, int]:
    seen: set[str] = set()
    counted: list[ShareEvent] = []
    duplicates = too_late = 0
    watermark = 0
    for ev in arrival:
        if ev.event_id in seen:
            duplicates += 1
            continue
        seen.add(ev.event_id)
        if ev.ts_ms < watermark - 24 * HOUR:
            too_late += 1
            continue
        counted.append(ev)
        watermark = max(watermark, ev.ts_ms)
    return counted, duplicates, too_late


def expected_row(events: list[ShareEvent]) -> dict[str, Any]:
    accepted = [e for e in events if e.status == "accepted"]
    actual = [e.actual_difficulty for e in events if e.actual_difficulty is not None]
    return {
        "accepted": len(accepted),
        "rejected": sum(e.status == "rejected" for e in events),
        "stale": sum(e.status == "stale" for e in events),
        "difficulty_accepted": math.fsum(e.difficulty for e in accepted),
        "best_difficulty": max(actual) if actual else None,
        "last_share_at_ms": max(e.ts_ms for e in events),
        "blocks_found": 0,
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_model_equals_plain_recount(seed: int) -> None:
    rng = random.Random(seed)
    arrival = make_stream(rng)
    counted, duplicates, too_late = reference(arrival)
    assert duplicates > 100 and too_late > 10  # the stream really is messy

    # The stream ends 25 h after its workers' last shares: kept, so their figures can be checked.
    model = PoolAggregate(prune_every_ms=None)
    workers: MinuteTable = MinuteTable(resident_minutes=10**9)  # everything resident here
    pools: MinuteTable = MinuteTable(resident_minutes=10**9)
    got_dup = got_too_late = 0
    i = 0
    while i < len(arrival):
        n = rng.randrange(1, 400)
        result = model.ingest_shares(arrival[i : i + n])
        workers.apply(result.worker_deltas)
        pools.apply(result.pool_deltas)
        got_dup += result.duplicates
        got_too_late += result.too_late
        i += n
    assert (got_dup, got_too_late) == (duplicates, too_late)

    by_worker: dict[tuple, list[ShareEvent]] = defaultdict(list)
    by_pool: dict[tuple, list[ShareEvent]] = defaultdict(list)
    for e in counted:
        minute = e.ts_ms - e.ts_ms % MIN
        by_worker[(e.pool, e.miner, e.worker, minute)].append(e)
        by_pool[(e.pool, minute)].append(e)
    assert len(workers) == len(by_worker) and len(pools) == len(by_pool)
    for key, events in by_worker.items():
        row = workers.get(key)
        assert row is not None and row.as_row() == expected_row(events), key  # exact, floats too
    for pool_key, events in by_pool.items():
        total = pools.get(pool_key)
        assert total is not None and total.as_row() == expected_row(events), pool_key

    as_of = model.watermark_ms
    for pool, miner, worker in WORKERS:
        snap = model.worker_figures((pool, miner, worker), as_of)
        mine = [e for e in counted if (e.pool, e.miner, e.worker) == (pool, miner, worker)]
        for name in WINDOWS:
            start, end = window_range(name, as_of)
            weighted = [(minute_weight(name, as_of, e.ts_ms - e.ts_ms % MIN), e) for e in mine]
            inside = [(w, e) for w, e in weighted if w]
            accepted = [(w, e) for w, e in inside if e.status == "accepted"]
            want = math.fsum(w * e.difficulty for w, e in accepted) * 2**32 / ((end - start) / 1000)
            assert snap["hashrate"][name] == pytest.approx(want, rel=1e-12, abs=1e-9), name
            assert snap["shares"][name] == round(math.fsum(w for w, _ in accepted))
            assert snap["submitted"][name] == round(math.fsum(w for w, _ in inside))
        assert snap["last_share_at_ms"] == max(e.ts_ms for e in mine)
    alice = miner_figures(model, "main", "alice", ["rig1", "rig2"], as_of, as_of)
    rigs = [model.worker_figures(("main", "alice", w), as_of)["hashrate"]["24h"] for w in ("rig1", "rig2")]
    assert alice["workers_total"] == 2
    assert alice["hashrate"]["24h"] == pytest.approx(sum(rigs), rel=1e-12)


def pool_record(model: PoolAggregate, as_of_ms: int) -> dict[str, Any]:
    return pool_figures_from_models("main", [model], as_of_ms, pool_activity([(model, as_of_ms)]))


def test_blocks_and_connections_through_the_model() -> None:
    model = PoolAggregate()
    model.ledger.start_round("main", T0_MS)
    model.ingest_shares([share(T0_MS + i * 1_000, difficulty=10.0) for i in range(10)])
    result = model.ingest_blocks([
        block(T0_MS + 10_000, block_hash(1), network_difficulty=100.0, event_id="b1"),
        block(T0_MS + 10_000, block_hash(1), network_difficulty=100.0, event_id="b1"),  # a retry
        block(T0_MS + 20 * MIN, block_hash(1), status="confirmed"),
    ])
    assert result.duplicates == 1
    assert [u.is_new for u in result.updates] == [True, False]
    assert result.worker_deltas == {("main", "m1", "w1", T0_MS): MinuteStats(blocks_found=1)}
    assert result.pool_deltas == {("main", T0_MS): MinuteStats(blocks_found=1)}
    assert model.ledger.effort(block_hash(1)) == 1.0
    assert model.ingest_miner_events([miner_event(T0_MS + 11_000, "connected", worker="w2", difficulty=8.0)]) == 1
    snap = pool_record(model, T0_MS + 12_000)
    assert snap["active_workers"] == 2 and snap["active_miners"] == 1
    assert snap["blocks_found"] == 1 and snap["luck"]["64"] == 1.0
    assert snap["hashrate"]["1m"] == 0.0  # the minute is not complete yet
    assert pool_record(model, T0_MS + MIN)["hashrate"]["1m"] == 100.0 * 2**32 / 60
    w2 = model.worker_figures(("main", "m1", "w2"), T0_MS + 12_000)
    assert w2["online"] and w2["hashrate_upper"]["1m"] == pytest.approx(3.688879454 * 8.0 * 2**32 / 60)
    model.ingest_miner_events([miner_event(T0_MS + 13_000, "disconnected", worker="w2")])
    assert pool_record(model, T0_MS + 14_000)["active_workers"] == 1
    model.prune(T0_MS + 30 * HOUR)
    assert list(model.miners()) == []
