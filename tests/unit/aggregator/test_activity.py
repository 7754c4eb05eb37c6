"""Active miners and workers per minute (domain/activity.py): exact, order-free, restorable."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from services.aggregator.domain.activity import (
    ACTIVE_SPAN_MINUTES,
    ActivityLedger,
    MinuteMask,
    newly_active_range,
)
from services.aggregator.domain.minutes import MINUTE_MS

pytestmark = pytest.mark.unit

DAY_MS = 24 * 60 * MINUTE_MS
T0 = 29_000_000  # a minute number (~2025)


def _key(minute: int, pool: str = "main", miner: str = "m", worker: str = "w") -> tuple[str, str, str, int]:
    return pool, miner, worker, minute * MINUTE_MS


def _recount(share_minutes: list[tuple[str, str, str, int]]) -> Counter[tuple[str, int, str]]:
    """The definition, counted the slow way: per pool and minute M, workers and miners with a
    share-minute in M-9 .. M."""
    out: Counter[tuple[str, int, str]] = Counter()
    workers = {(p, m, w) for p, m, w, _ in share_minutes}
    miners = {(p, m) for p, m, _, _ in share_minutes}
    minutes = {t // MINUTE_MS for *_, t in share_minutes}
    candidates = {x + k for x in minutes for k in range(ACTIVE_SPAN_MINUTES)}
    for x in candidates:
        span = range(x - ACTIVE_SPAN_MINUTES + 1, x + 1)
        for p, m, w in workers:
            if any((p, m, w, s * MINUTE_MS) in share_minutes for s in span):
                out[(p, x * MINUTE_MS, "workers")] += 1
        for p, m in miners:
            if any((p, m, w, s * MINUTE_MS) in share_minutes for (pp, mm, w) in workers if (pp, mm) == (p, m)
                   for s in span):
                out[(p, x * MINUTE_MS, "miners")] += 1
    return out


def _totals(batches: list[dict[tuple[str, int], list[int]]]) -> Counter[tuple[str, int, str]]:
    out: Counter[tuple[str, int, str]] = Counter()
    for batch in batches:
        for (pool, minute_ms), (miners, workers) in batch.items():
            out[(pool, minute_ms, "miners")] += miners
            out[(pool, minute_ms, "workers")] += workers
    return +out


@pytest.mark.parametrize(("before", "expected"), [
    (0, list(range(10))),                    # nothing near: t .. t+9 all new
    (1 << 8, [9]),                           # a share at t-1 covers t-1 .. t+8
    (1, [1, 2, 3, 4, 5, 6, 7, 8, 9]),        # a share at t-9 covers t-9 .. t
    (1 << 10, [0]),                          # a share at t+1 covers t+1 .. t+10: only t is new
    (1 << 18, list(range(9))),               # a share at t+9 covers t+9 onwards
    ((1 << 19) - 1 - (1 << 9), []),          # every neighbour has shares
])
def test_newly_active_minutes_table(before: int, expected: list[int]) -> None:
    assert list(newly_active_range(before)) == expected


def test_newly_active_minutes_are_one_run_for_every_neighbourhood() -> None:
    """The run arithmetic against the definition, over every neighbourhood of a new
    share-minute (2**18: each of the 18 neighbours with or without shares)."""
    span = ACTIVE_SPAN_MINUTES
    for neighbours in range(1 << 18):
        around = (neighbours & 0x1FF) | ((neighbours >> 9) << 10)  # bit 9, t itself, stays clear
        defined = [k for k in range(span) if not (around >> k) & ((1 << span) - 1)]
        assert list(newly_active_range(around)) == defined, bin(around)


def test_one_share_minute_makes_ten_minutes_active_once() -> None:
    ledger = ActivityLedger(max_lateness_ms=DAY_MS)
    first = ledger.observe([_key(T0)])
    assert sorted(first) == [("main", (T0 + k) * MINUTE_MS) for k in range(10)]
    assert all(v == [1, 1] for v in first.values())
    assert ledger.observe([_key(T0)]) == {}  # the same minute again adds nothing


def test_a_second_worker_of_the_same_miner_adds_workers_not_miners() -> None:
    ledger = ActivityLedger(max_lateness_ms=DAY_MS)
    ledger.observe([_key(T0)])
    second = ledger.observe([_key(T0 + 3, worker="w2")])
    assert second[("main", T0 * MINUTE_MS + 3 * MINUTE_MS)] == [0, 1]
    assert second[("main", (T0 + 12) * MINUTE_MS)] == [1, 1]  # past the first worker's span: the miner too


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_order_and_batching_gives_the_recount(seed: int) -> None:
    rng = random.Random(seed)
    minutes = [("main", f"m{rng.randrange(3)}", f"w{rng.randrange(4)}", (T0 + rng.randrange(60)) * MINUTE_MS)
               for _ in range(80)]
    expected = _recount(list(set(minutes)))
    for _ in range(3):
        rng.shuffle(minutes)
        ledger = ActivityLedger(max_lateness_ms=DAY_MS)
        cut = rng.randrange(len(minutes))
        assert _totals([ledger.observe(minutes[:cut]), ledger.observe(minutes[cut:])]) == expected


def test_restored_masks_continue_exactly() -> None:
    rng = random.Random(7)
    minutes = [("main", f"m{rng.randrange(3)}", f"w{rng.randrange(3)}", (T0 + rng.randrange(90)) * MINUTE_MS)
               for _ in range(60)]
    whole = ActivityLedger(max_lateness_ms=DAY_MS)
    expected = _totals([whole.observe(minutes)])
    first = ActivityLedger(max_lateness_ms=DAY_MS)
    before = first.observe(minutes[:30])
    rows = {key: MinuteMask.from_row(*mask.as_row()) for key, mask in first.items()}  # as stored
    second = ActivityLedger(max_lateness_ms=DAY_MS)
    second.restore(rows)
    assert _totals([before, second.observe(minutes[30:])]) == expected


def test_masks_keep_the_lateness_horizon_and_prune_past_it() -> None:
    ledger = ActivityLedger(max_lateness_ms=60 * MINUTE_MS)  # horizon: 60 + 10 minutes
    ledger.observe([_key(T0)])
    ledger.observe([_key(T0 + 500)])
    mask = ledger.worker_mask(("main", "m", "w"))
    assert mask is not None and mask.head == T0 + 500 and mask.base == T0 + 500 - 70
    assert ledger.observe([_key(T0 + 429)]) == {}  # older than the horizon: a too-late share's place
    late = ledger.observe([_key(T0 + 440)])  # inside it: counted
    assert sorted(late) == [("main", (T0 + 440 + k) * MINUTE_MS) for k in range(10)]
    assert ledger.prune((T0 + 500 + 70) * MINUTE_MS) == 0
    assert ledger.prune((T0 + 500 + 71) * MINUTE_MS) == 1 and len(ledger) == 0


def test_mask_rows_round_trip() -> None:
    mask = MinuteMask(T0)
    for minute in (T0 + 5, T0, T0 + 64, T0 - 3):
        mask.add(minute, horizon_minutes=1_000)
    again = MinuteMask.from_row(*mask.as_row())
    assert (again.base, again.bits) == (mask.base, mask.bits) and again.base == T0 - 3


def test_observe_takes_the_folds_dict() -> None:
    """apply_fold hands over its dict of worker-minute -> stats: the keys are the groups."""
    ledger = ActivityLedger(max_lateness_ms=DAY_MS)
    by_list = ActivityLedger(max_lateness_ms=DAY_MS).observe([_key(T0), _key(T0 + 4, worker="w2")])
    assert ledger.observe({_key(T0): object(), _key(T0 + 4, worker="w2"): object()}) == by_list
    assert ledger.observe({}) == {} and len(ledger) == 2


def test_pruned_rows_are_reused_so_churn_does_not_grow_memory() -> None:
    """Every hour 500 workers never seen before share once; the hourly prune forgets the idle
    ones, and the rows follow the live workers (~1,000), not the 25,000 ever seen."""
    ledger = ActivityLedger(max_lateness_ms=60 * MINUTE_MS, capacity=64)
    for hour in range(50):
        minute = T0 + 60 * hour
        added = ledger.observe([_key(minute, miner=f"m{hour}-{i // 4}", worker=f"w{i % 4}") for i in range(500)])
        assert added[("main", minute * MINUTE_MS)] == [125, 500]
        ledger.prune(minute * MINUTE_MS)
        assert len(ledger) <= 1_000
    assert ledger.rows_allocated <= 4_096
    assert ledger.worker_mask(("main", "m0-0", "w0")) is None
    assert ledger.worker_mask(("main", "m49-0", "w0")) == MinuteMask(T0 + 60 * 49, 1)


def test_a_pruned_worker_seen_again_starts_afresh_and_survivors_keep_their_masks() -> None:
    ledger = ActivityLedger(max_lateness_ms=60 * MINUTE_MS)  # horizon: 70 minutes
    ledger.observe([_key(T0, worker="gone"), _key(T0, miner="m2", worker="idle"), _key(T0, miner="m2", worker="busy")])
    ledger.observe([_key(T0 + 100, miner="m2", worker="busy")])
    busy, m2 = ledger.worker_mask(("main", "m2", "busy")), ledger.miner_mask(("main", "m2"))
    assert busy == MinuteMask(T0 + 30, 1 << 70)
    assert ledger.prune((T0 + 100) * MINUTE_MS) == 2 and len(ledger) == 1
    assert ledger.worker_mask(("main", "m", "gone")) is None and ledger.miner_mask(("main", "m")) is None
    assert ledger.worker_mask(("main", "m2", "busy")) == busy and ledger.miner_mask(("main", "m2")) == m2
    # Its miner went with it: both count all ten minutes again.
    gone = ledger.observe([_key(T0 + 101, worker="gone")])
    assert gone == {("main", (T0 + 101 + k) * MINUTE_MS): [1, 1] for k in range(10)}
    # Its miner stayed (busy at T0+100 covers T0+100 .. T0+109): the miner adds T0+110 only.
    idle = ledger.observe([_key(T0 + 101, miner="m2", worker="idle")])
    assert idle == {("main", (T0 + 101 + k) * MINUTE_MS): [1 if k == 9 else 0, 1] for k in range(10)}


def test_restore_replaces_a_workers_mask_and_adds_to_its_miners() -> None:
    ledger = ActivityLedger(max_lateness_ms=DAY_MS)
    ledger.observe([_key(T0), _key(T0 + 30, worker="w2")])
    ledger.restore({("main", "m", "w"): MinuteMask(T0 + 50, 0b101), ("main", "m", "empty"): MinuteMask(T0, 0)})
    assert ledger.worker_mask(("main", "m", "w")) == MinuteMask(T0 + 50, 0b101)
    assert ledger.worker_mask(("main", "m", "empty")) is None and len(ledger) == 2
    assert ledger.miner_mask(("main", "m")) == MinuteMask(T0, 1 | 1 << 30 | 1 << 50 | 1 << 52)
    # The miner still covers T0 .. T0+9 and T0+50 .. T0+61: a share at T0+55 adds nothing for it.
    assert ledger.observe([_key(T0 + 55, worker="w3")]) == {
        ("main", (T0 + 55 + k) * MINUTE_MS): [0 if k < 7 else 1, 1] for k in range(10)}
