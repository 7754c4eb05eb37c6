"""WindowRows (the workers' array-backed window sums) against the per-key WindowAccumulator
as the oracle: batches of late, repeated and out-of-order groups, jumps of event time,
prunes and keys coming back; rows of pruned keys are reused; read-ahead never answers
what a read now would not."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from services.aggregator.domain.accumulator import WindowAccumulator, WindowTotals
from services.aggregator.domain.window_rows import WindowRows

from .samples import HOUR, MIN, T0_MS

pytestmark = pytest.mark.unit

Group = tuple[int, int, float, float, float]  # key, minute_start_ms, accepted, submitted, difficulty


def same(want: WindowTotals, got: WindowTotals) -> bool:
    # The oracle keeps running sums (float drift ~1e-16 relative); WindowRows sums afresh.
    return want.as_of_ms == got.as_of_ms and want.span_ms == got.span_ms and all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        for w, g in ((want.accepted, got.accepted), (want.submitted, got.submitted),
                     (want.difficulty, got.difficulty))
        for a, b in zip(w, g, strict=True))


def add_batch(rows: WindowRows[int], batch: list[Group]) -> list[bool]:
    return rows.add_groups([g[0] for g in batch], np.array([g[1] for g in batch], dtype=np.int64),
                           np.array([g[2] for g in batch]), np.array([g[3] for g in batch]),
                           np.array([g[4] for g in batch])).tolist()


def random_batch(rng: random.Random, clock_ms: int, keys: int) -> list[Group]:
    batch: list[Group] = []
    hot = rng.sample(range(keys), 5)  # keys repeated within the batch
    for _ in range(rng.choice((1, 3, 20, 80))):
        key = rng.choice(hot) if rng.random() < 0.3 else rng.randrange(keys)
        late_m = rng.choice((0, 0, 0, 1, 2, 5, 14, 59, 61, 130, 23 * 60, 25 * 60))
        ahead_m = rng.choice((0, 0, 0, 1, 3))  # out of order within the batch
        minute = clock_ms - clock_ms % MIN + (ahead_m - late_m) * MIN
        submitted = rng.randint(1, 30)
        accepted = rng.randint(0, submitted)
        batch.append((key, minute, float(accepted), float(submitted), accepted * rng.uniform(1.0, 1e4)))
    return batch


@pytest.mark.parametrize("seed", range(4))
def test_batches_read_as_the_per_key_accumulator(seed: int) -> None:
    rng = random.Random(seed)
    oracle: WindowAccumulator[int] = WindowAccumulator()
    rows: WindowRows[int] = WindowRows(capacity=8)  # grows several times
    clock = T0_MS + rng.randrange(HOUR)
    compared = pruned = 0
    for step in range(400):
        clock += rng.choice((0, 20_000, MIN, MIN, 3 * MIN, 17 * MIN, 2 * HOUR, 26 * HOUR))
        batch = random_batch(rng, clock, keys=60)
        assert add_batch(rows, batch) == [oracle.add(*g) for g in batch], step
        assert len(rows) == len(oracle) and set(rows.keys()) == set(oracle.keys())
        top = max(g[1] for g in batch)
        as_of = max(top, clock) + rng.choice((0, 0, MIN, 61 * MIN))
        sample = rng.sample(range(64), 12)  # 60 keys: a few are never known
        queries = [as_of] * len(sample)
        how = rng.choice(("totals", "many", "list", "ahead", "recomputed"))
        if how == "totals":
            got = [rows.totals(k, as_of) for k in sample]
        elif how == "many":
            arr = rows.totals_many(sample, as_of)
            got = arr.as_totals()
            assert arr.accepted.shape == (len(sample), 5)
        elif how == "list":
            got = rows.totals_list(sample, as_of)
        elif how == "ahead":
            rows.read_ahead(sample, as_of)
            for k in sample:  # what read_ahead stands for: each key read as of as_of
                oracle.totals(k, as_of)
            queries = [as_of - rng.choice((0, MIN, 5 * MIN)) for _ in sample]  # earlier: clamped
            got = [rows.totals(k, q) for k, q in zip(sample, queries, strict=True)]
        else:
            got = [rows.recomputed(k, as_of) for k in sample]
            assert all(same(oracle.recomputed(k, as_of), g) for k, g in zip(sample, got, strict=True))
            continue
        want = [oracle.totals(k, q) for k, q in zip(sample, queries, strict=True)]
        assert all(same(w, g) for w, g in zip(want, got, strict=True)), (step, how)
        compared += len(sample)
        if rng.random() < 0.1:
            gone = oracle.prune(as_of)
            assert rows.prune(as_of) == gone
            pruned += gone
    assert compared > 2_000 and pruned > 50  # the stream did reach prunes and keys coming back


def test_a_pruned_key_comes_back_new_with_only_its_new_data() -> None:
    rows: WindowRows[str] = WindowRows(capacity=2)
    rows.add("old", T0_MS, 5, 5, 50.0)
    rows.add("kept", T0_MS, 1, 1, 1.0)
    later = T0_MS + 26 * HOUR
    rows.add("kept", later, 1, 1, 1.0)
    assert rows.prune(later) == 1
    assert "old" not in rows and "kept" in rows and len(rows) == 1
    assert rows.add("new", later, 2, 3, 4.0)  # takes old's row
    assert rows.capacity == 2
    assert rows.add("old", later, 1, 2, 3.0)  # new again; grows: no free row left
    t = rows.totals("old", later + MIN)
    assert t.accepted == (1.0,) * 5 and t.submitted == (2.0,) * 5 and t.difficulty == (3.0,) * 5
    assert rows.totals("new", later + MIN).submitted == (3.0,) * 5


def test_memory_follows_live_keys_not_churn() -> None:
    rows: WindowRows[tuple[int, int]] = WindowRows(capacity=16)
    capacities = []
    for generation in range(8):  # 500 keys a day, each generation gone a day later
        now = T0_MS + generation * 26 * HOUR
        assert rows.prune(now) == (500 if generation else 0)
        keys = [(generation, i) for i in range(500)]
        new = rows.add_groups(keys, np.full(500, now, dtype=np.int64), np.ones(500), np.ones(500), np.ones(500))
        assert new.all() and len(rows) == 500
        capacities.append(rows.capacity)
    assert capacities == [capacities[0]] * 8 and capacities[0] < 1024


def test_new_key_flag_marks_the_first_group_of_each_new_key_only() -> None:
    rows: WindowRows[str] = WindowRows()
    rows.add("known", T0_MS, 1, 1, 1.0)
    batch: list[tuple[str, int]] = [("known", T0_MS), ("a", T0_MS + MIN), ("a", T0_MS), ("b", T0_MS),
                                    ("known", T0_MS + MIN), ("b", T0_MS)]
    ones = np.ones(len(batch))
    new = rows.add_groups([k for k, _ in batch], np.array([m for _, m in batch], dtype=np.int64), ones, ones, ones)
    assert new.tolist() == [False, True, False, True, False, False]


def test_read_ahead_goes_stale_on_writes_and_later_reads() -> None:
    rows: WindowRows[str] = WindowRows()
    oracle: WindowAccumulator[str] = WindowAccumulator()
    for acc in (rows, oracle):
        acc.add("w", T0_MS, 1, 1, 1.0)
    rows.read_ahead(["w", "unknown"], T0_MS + MIN)
    assert rows.totals("w", T0_MS + MIN).submitted[0] == 1.0
    for acc in (rows, oracle):
        acc.add("w", T0_MS, 2, 2, 2.0)  # a late delta for the minute read ahead
    assert rows.totals("w", T0_MS + MIN) == oracle.totals("w", T0_MS + MIN)
    assert rows.totals("w", T0_MS + MIN).submitted[0] == 3.0
    rows.read_ahead(["w"], T0_MS + MIN)
    # A later read advances the key: an earlier query is clamped to it, as the oracle's is.
    assert rows.totals("w", T0_MS + 3 * MIN) == oracle.totals("w", T0_MS + 3 * MIN)
    assert rows.totals("w", T0_MS + MIN) == oracle.totals("w", T0_MS + MIN)
    assert rows.totals("w", T0_MS + MIN).as_of_ms == T0_MS + 3 * MIN
    rows.read_ahead(["w"], T0_MS + 3 * MIN)
    rows.totals_many(["w"], T0_MS + 5 * MIN)  # advances too
    assert rows.totals_list(["w"], T0_MS + 3 * MIN)[0].as_of_ms == T0_MS + 5 * MIN
    assert rows.totals("unknown", T0_MS + MIN) == WindowTotals.empty(T0_MS + MIN)
