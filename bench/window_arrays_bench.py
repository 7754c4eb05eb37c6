"""Per-group WindowAccumulator.add vs batched WindowRows.add_groups (issue 15; the service's
domain/window_rows.py, which PoolAggregate uses for its workers since).

    .venv/bin/python bench/window_arrays_bench.py verify [--seeds 5] [--batches 300]
    .venv/bin/python bench/window_arrays_bench.py time [--runs 3]

verify (untimed, exits 1 on any mismatch): random streams (keys 1..2,000, ~30 hours
of minutes, some keys idle for more than 24h, groups up to hours late or out of
order, keys repeated within a batch, batch sizes 1..600) go to both accumulators:
WindowAccumulator.add per group in the batch's order, add_groups per batch. After
every batch, a sample of keys is read at the batch's max minute, +1 min, +61 min
and +25 h (both sides read the same way, since reads advance a key's as-of) via
totals and totals_many, and checked against WindowAccumulator.totals and
.recomputed within 1e-9 relative.

time: two shapes with 100,000 keys, inputs built before timing (the fold's output
already split into Python values for (a) and into arrays for (b)):
  backlog  300,000 groups over 20 minutes of event time (~3 of the 20 minutes per
           key), batches of 5,000 in time order with +-1 minute of disorder;
  live     all 100,000 keys warmed with one group, then 20,000 keys with a group
           every minute for 15 minutes, batches of 5,000;
and a tick read after each shape: 10 ticks of totals for 5,000 keys, a minute
apart (per-key totals (a) vs totals_many (b)). a and b alternate, `--runs` each;
printed: one JSON object with groups/s (keys/s for ticks), b/a per run and medians.
(b) preallocates 100,000 rows; in backlog its first touch of those pages is timed,
as (a)'s allocation of new series is.
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.columnar import cli  # noqa: E402
from services.aggregator.domain.accumulator import WindowAccumulator, WindowTotals  # noqa: E402
from services.aggregator.domain.minutes import MINUTE_MS  # noqa: E402
from services.aggregator.domain.window_rows import WindowRows  # noqa: E402

T0_MS = 1_780_000_000_000 - 1_780_000_000_000 % (60 * MINUTE_MS)  # an hour boundary
REL = 1e-9
Group = tuple[int, int, float, float, float]  # key, minute_start_ms, accepted, submitted, difficulty


class Mismatch(AssertionError):
    pass


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=0.0)


def _check(what: str, want: WindowTotals, got_as_of: int, got: tuple[tuple[float, ...], ...],
           spans: tuple[int, ...]) -> None:
    if want.as_of_ms != got_as_of or want.span_ms != spans:
        raise Mismatch(f"{what}: as_of/spans {want.as_of_ms} {want.span_ms} != {got_as_of} {spans}")
    for name, w, g in zip(("accepted", "submitted", "difficulty"), (want.accepted, want.submitted, want.difficulty), got):
        if len(w) != len(g) or not all(_close(x, y) for x, y in zip(w, g)):
            raise Mismatch(f"{what}: {name} {w} != {g}")


def _values(rng: random.Random) -> tuple[float, float, float]:
    submitted = rng.randint(1, 40)
    accepted = rng.randint(0, submitted)
    return float(accepted), float(submitted), accepted * rng.uniform(1.0, 1000.0)


def _stream(seed: int, batches: int) -> list[list[Group]]:
    """Batches over ~30 hours: a clock advancing ~6 minutes a batch, lateness mostly small."""
    rng = random.Random(seed)
    span_m = 30 * 60
    sleepers = set(rng.sample(range(1, 2001), 200))  # idle from hour 3 to hour 28: a >24h gap
    out: list[list[Group]] = []
    for b in range(batches):
        clock = b * span_m // batches
        size = rng.choice((1, 2, 5, 50, 200, 600))
        batch: list[Group] = []
        hot = rng.sample(range(1, 2001), 20)  # repeated keys within the batch
        for _ in range(size):
            key = rng.choice(hot) if rng.random() < 0.3 else rng.randint(1, 2000)
            if key in sleepers and 180 < clock < 28 * 60:
                continue
            r = rng.random()
            late = 0 if r < 0.5 else rng.randint(1, 5) if r < 0.8 else rng.randint(6, 70) if r < 0.93 \
                else rng.randint(71, 1500)
            minute = max(0, clock - late + (rng.randint(0, 3) if r < 0.2 else 0))
            batch.append((key, T0_MS + minute * MINUTE_MS, *_values(rng)))
        out.append(batch)
    return out


def _arrays(batch: list[Group]) -> tuple[list[int], npt.NDArray[np.int64], npt.NDArray[np.float64],
                                          npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    return ([g[0] for g in batch], np.array([g[1] for g in batch], dtype=np.int64),
            np.array([g[2] for g in batch]), np.array([g[3] for g in batch]), np.array([g[4] for g in batch]))


def verify(seeds: int, batches: int) -> dict[str, Any]:
    compared = 0
    for seed in range(seeds):
        rng = random.Random(1000 + seed)
        a: WindowAccumulator[int] = WindowAccumulator()
        b: WindowRows[int] = WindowRows(capacity=64)  # exercises growth
        for i, batch in enumerate(_stream(seed, batches)):
            new_a = [a.add(*g) for g in batch]
            new_b = b.add_groups(*_arrays(batch)).tolist()
            if new_a != new_b:
                raise Mismatch(f"seed {seed} batch {i}: new keys {new_a} != {new_b}")
            if len(a) != len(b):
                raise Mismatch(f"seed {seed} batch {i}: {len(a)} keys != {len(b)}")
            if not batch:
                continue
            top = max(g[1] for g in batch)
            touched = list({g[0] for g in batch})
            sample = rng.sample(touched, min(15, len(touched))) + rng.sample(range(0, 2010), 25)
            far = set(rng.sample(sample, 4))  # these also get read 25 h ahead (then all later adds are late)
            single, many = sample[: len(sample) // 2], sample[len(sample) // 2:]
            for as_of in (top, top + MINUTE_MS, top + 61 * MINUTE_MS, top + 25 * 60 * MINUTE_MS):
                far_read = as_of > top + 61 * MINUTE_MS
                keys1 = [k for k in single if k in far or not far_read]
                keys2 = [k for k in many if k in far or not far_read]
                for k in keys1:
                    want = a.totals(k, as_of)
                    got = b.totals(k, as_of)
                    _check(f"seed {seed} batch {i} key {k} as_of {as_of} totals", want, got.as_of_ms,
                           (got.accepted, got.submitted, got.difficulty), got.span_ms)
                    _check(f"seed {seed} batch {i} key {k} as_of {as_of} recomputed", a.recomputed(k, as_of),
                           got.as_of_ms, (got.accepted, got.submitted, got.difficulty), got.span_ms)
                    compared += 1
                arr = b.totals_many(keys2 + keys2[:2], as_of)  # a repeated key too
                for j, k in enumerate(keys2 + keys2[:2]):
                    want = a.totals(k, as_of)
                    got_t = (tuple(arr.accepted[j].tolist()), tuple(arr.submitted[j].tolist()),
                             tuple(arr.difficulty[j].tolist()))
                    _check(f"seed {seed} batch {i} key {k} as_of {as_of} totals_many", want,
                           int(arr.as_of_ms[j]), got_t, arr.span_ms)
                    _check(f"seed {seed} batch {i} key {k} as_of {as_of} many/recomputed",
                           a.recomputed(k, as_of), int(arr.as_of_ms[j]), got_t, arr.span_ms)
                    compared += 1
    return {"mode": "verify", "ok": True, "seeds": seeds, "batches_per_seed": batches,
            "keys_compared": compared}


# ---- timing ----

Shape = tuple[list[list[Group]], list[tuple[Any, ...]], int]  # batches, as arrays, last minute


def _to_shape(groups: list[Group], batch: int) -> Shape:
    batches = [groups[i:i + batch] for i in range(0, len(groups), batch)]
    return batches, [_arrays(x) for x in batches], max(g[1] for g in groups)


def _backlog(keys: int, seed: int) -> Shape:
    rng = random.Random(seed)
    groups: list[tuple[float, Group]] = []
    per_minute = 300_000 // 20
    for minute in range(20):
        for key in rng.sample(range(keys), per_minute):
            order = minute + rng.uniform(-1.0, 1.0)  # small disorder
            groups.append((order, (key, T0_MS + minute * MINUTE_MS, *_values(rng))))
    groups.sort(key=lambda x: x[0])
    return _to_shape([g for _, g in groups], 5_000)


def _live(keys: int, seed: int) -> tuple[Shape, Shape]:
    """(warm-up: one group per key, untimed; the live stream)."""
    rng = random.Random(seed)
    warm = [(k, T0_MS, *_values(rng)) for k in range(keys)]
    active = rng.sample(range(keys), 20_000)
    groups: list[Group] = []
    for minute in range(1, 16):
        groups += [(k, T0_MS + minute * MINUTE_MS, *_values(rng)) for k in active]
    return _to_shape(warm, 5_000), _to_shape(groups, 5_000)


def _run_a(warm: Shape | None, shape: Shape, tick_keys: list[int]) -> tuple[float, float]:
    acc: WindowAccumulator[int] = WindowAccumulator()
    for batch in warm[0] if warm else []:
        for g in batch:
            acc.add(*g)
    gc.collect()
    add = acc.add
    t = time.perf_counter()
    for batch in shape[0]:
        for g in batch:
            add(*g)
    add_s = time.perf_counter() - t
    t = time.perf_counter()
    for tick in range(10):
        as_of = shape[2] + (tick + 1) * MINUTE_MS
        for k in tick_keys:
            acc.totals(k, as_of)
    return add_s, time.perf_counter() - t


def _run_b(warm: Shape | None, shape: Shape, tick_keys: list[int]) -> tuple[float, float]:
    acc: WindowRows[int] = WindowRows(capacity=100_000)
    for arrays in warm[1] if warm else []:
        acc.add_groups(*arrays)
    gc.collect()
    t = time.perf_counter()
    for arrays in shape[1]:
        acc.add_groups(*arrays)
    add_s = time.perf_counter() - t
    t = time.perf_counter()
    for tick in range(10):
        acc.totals_many(tick_keys, shape[2] + (tick + 1) * MINUTE_MS)
    return add_s, time.perf_counter() - t


def _summary(a: list[float], b: list[float], n: int, unit: str) -> dict[str, Any]:
    ra, rb = [n / x for x in a], [n / x for x in b]
    ratios = [y / x for x, y in zip(ra, rb)]
    return {f"a_{unit}": [round(x) for x in ra], f"b_{unit}": [round(x) for x in rb],
            "ratio_b_a": [round(x, 2) for x in ratios], f"median_a_{unit}": round(statistics.median(ra)),
            f"median_b_{unit}": round(statistics.median(rb)), "median_ratio_b_a": round(statistics.median(ratios), 2)}


def timed(runs: int, keys: int) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": "time", "keys": keys, "runs": runs}
    backlog = _backlog(keys, 1)
    live_warm, live = _live(keys, 2)
    tick_keys = random.Random(3).sample(range(keys), 5_000)
    shapes: dict[str, tuple[Shape | None, Shape]] = {"backlog": (None, backlog), "live": (live_warm, live)}
    for name, (warm, shape) in shapes.items():
        n = sum(len(x) for x in shape[0])
        res: dict[str, list[float]] = {"a": [], "b": [], "ta": [], "tb": []}
        for _ in range(runs):
            for side, fn in (("a", _run_a), ("b", _run_b)):
                run: Callable[[Shape | None, Shape, list[int]], tuple[float, float]] = fn
                add_s, tick_s = run(warm, shape, tick_keys)
                res[side].append(add_s)
                res["t" + side].append(tick_s)
                gc.collect()
        out[name] = {"groups": n, "batches": len(shape[0]), **_summary(res["a"], res["b"], n, "groups_s")}
        out[name + "_tick"] = {"keys_per_tick": len(tick_keys), "ticks": 10,
                               **_summary(res["ta"], res["tb"], 10 * len(tick_keys), "keys_s")}
    return out


def main() -> int:
    return cli.run(verify, timed, Mismatch)


if __name__ == "__main__":
    sys.exit(main())
