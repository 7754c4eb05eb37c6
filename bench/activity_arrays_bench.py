"""The service's array-backed ActivityLedger against the per-key reference it replaced.

    .venv/bin/python bench/activity_arrays_bench.py verify [--seeds 5] [--batches 300]
    .venv/bin/python bench/activity_arrays_bench.py time [--runs 3]

verify (untimed, exits 1 on any mismatch): random streams over ~30 hours (3 pools,
~1,440 workers of ~460 miners with 1, 3 or 4 workers, a tenth idle for longer
than any horizon) go to both ledgers, the reference (tests/unit/aggregator/
activity_reference.py) with the batch's tuples in order, the service's class
with the same batch, as the fold's dict (what PoolAggregate.apply_fold hands it)
or as the list with its repeats, alternately. Groups are generated as
ingest_shares keeps them: in arrival order, never older than the lateness limit
behind the running watermark (up to the limit exactly; hours late with the 24h
limit), out of order, repeated within a batch (same key, same minute), and now
and then a watermark jump of 1-7 hours inside a batch, which puts that batch's
earlier groups near the limit behind the horizon (counted, then trimmed).
Also ~2% of groups are older than their worker's horizon (head - horizon - 1 ..
-500): ingest never passes these; both ledgers must drop them. The lateness limit
cycles per seed through 90 minutes, 24 hours and 200 minutes, so masks wrap and
trim. Every 20 batches both prune at the running watermark (the idle tenth is
forgotten, then seen again); every 70 batches both are rebuilt, as a takeover
does, from their own worker masks' stored rows (`as_row` -> `restore`). After
every batch: the output dict (every pool-minute and both counts), len(), and
the worker and miner masks (base, bits) of a sample of keys; after a prune,
every 25 batches and at the end, the masks of every key.

time: two shapes with 100,000 workers (4 per miner, one pool: aggregator_bench's
keys), the 24h lateness limit, inputs built before timing (the fold's dict, key
-> a value, as apply_fold passes it):
  backlog  300,000 groups over 20 minutes of event time (~3 of the 20 minutes per
           worker), batches of 5,000 in time order with +-1 minute of disorder;
  live     all 100,000 workers warmed with one group, then 20,000 workers with a
           group every minute for 15 minutes, batches of 5,000.
a is the reference's observe, b the service's: both take the dict and return
the dict of pool-minutes, so b pays its interning (one dict lookup per group),
the minute column and the output dict; b starts at its default capacity and
grows. Also timed apart: reading back the worker masks of every key a batch
touched, `worker_masks` (what the fold's worker_status rows do after each batch, writes.py).
a and b alternate, `--runs` each; printed: one JSON object with groups/s, b/a
per run and medians (ratio > 1: the service's class is faster).
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.columnar import cli  # noqa: E402
from services.aggregator.domain.activity import ActivityLedger, MinuteMask  # noqa: E402
from services.aggregator.domain.lateness import MAX_LATENESS_MS  # noqa: E402
from services.aggregator.domain.minutes import MINUTE_MS, WorkerKey  # noqa: E402
from tests.unit.aggregator.activity_reference import ReferenceActivityLedger  # noqa: E402

T0_M = 29_666_640  # a minute number (an hour boundary, May 2026)
Group = tuple[str, str, str, int]  # pool, miner, worker, minute_start_ms: ActivityLedger.observe's input
LATENESS_M = (90, 24 * 60, 200)


class Mismatch(AssertionError):
    pass


def _key(i: int) -> tuple[str, str, str]:
    """Worker i (some i share a key) of ~460 miners over 3 pools (a miner stays in one pool)."""
    miner = i // 4 if i % 7 else i // 3  # uneven miners
    return f"p{miner % 3}", f"m{miner}", f"w{i % 4}"


def _stream(seed: int, batches: int, lateness_m: int) -> list[list[Group]]:
    """Batches over ~30 hours, each group kept only as ingest_shares would keep it."""
    rng = random.Random(seed)
    span_m = 30 * 60
    keys = [_key(i) for i in range(1600)]
    sleepers = set(rng.sample(range(1600), 160))  # idle from hour 3 to hour 28: past any horizon
    wm = T0_M
    out: list[list[Group]] = []
    for b in range(batches):
        clock = T0_M + b * span_m // batches
        size = rng.choice((1, 2, 5, 50, 200, 600))
        hot = rng.sample(range(1600), 20)
        batch: list[Group] = []
        for _ in range(size):
            i = rng.choice(hot) if rng.random() < 0.3 else rng.randrange(1600)
            if i in sleepers and T0_M + 180 < clock < T0_M + 28 * 60:
                continue
            r = rng.random()
            if r < 0.003:  # the watermark jumps ahead: earlier groups at the limit get trimmed
                t = wm + rng.randint(60, 400)
            elif r < 0.05:
                t = wm - lateness_m  # exactly at the limit
            else:
                late = 0 if r < 0.5 else rng.randint(1, 5) if r < 0.8 else rng.randint(6, 70) if r < 0.93 \
                    else rng.randint(71, 1500)
                t = max(clock, wm - 5) - late + (rng.randint(0, 3) if r < 0.2 else 0)
            if t < wm - lateness_m:
                continue  # too late: ingest drops it
            wm = max(wm, t)
            batch.append((*keys[i], t * MINUTE_MS))
            if rng.random() < 0.1:
                batch.append(batch[rng.randrange(len(batch))])  # a repeat within the batch
        out.append(batch)
    return out


def _stale(rng: random.Random, ledger: ReferenceActivityLedger, batch: list[Group], horizon: int) -> list[Group]:
    """Insert groups older than their worker's horizon (read before the batch): dropped in any order."""
    out = list(batch)
    for g in batch:
        mask = ledger.worker_mask(g[:3]) if rng.random() < 0.02 else None
        if mask is not None:
            t = mask.head - horizon - rng.randint(1, 500)
            out.insert(rng.randrange(len(out) + 1), (*g[:3], t * MINUTE_MS))
    return out


def _minutes(mask: MinuteMask | None) -> set[int] | None:
    return None if mask is None else {mask.base + i for i in range(mask.bits.bit_length()) if mask.bits >> i & 1}


def _same_mask(what: str, want: MinuteMask | None, got: MinuteMask | None) -> None:
    if (want is None) != (got is None) or (want and got and (want.base, want.bits) != (got.base, got.bits)):
        w, g = _minutes(want), _minutes(got)
        only = None if w is None or g is None else (sorted(w - g)[:5], sorted(g - w)[:5])
        raise Mismatch(f"{what}: base reference {want and want.base} service {got and got.base}; "
                       f"share-minutes only in (reference, service): {only}")


def _same_masks(where: str, a: ReferenceActivityLedger, b: ActivityLedger, workers: list[WorkerKey]) -> int:
    for k in workers:
        _same_mask(f"{where}: worker {k}", a.worker_mask(k), b.worker_mask(k))
        _same_mask(f"{where}: miner {k[:2]}", a.miner_mask(k[:2]), b.miner_mask(k[:2]))
    for k, want, got in zip(workers, a.worker_masks(workers), b.worker_masks(workers)):
        _same_mask(f"{where}: worker {k} (read in a batch)", want, got)
    return 2 * len(workers)


def _restored(lateness_m: int, ledger: ReferenceActivityLedger | ActivityLedger,
              cls: type[ReferenceActivityLedger] | type[ActivityLedger]) -> Any:
    """A new ledger seeded as takeover.py seeds one: from the worker masks as stored."""
    again = cls(lateness_m * MINUTE_MS)
    again.restore({key: MinuteMask.from_row(*mask.as_row()) for key, mask in ledger.items()})
    return again


def verify(seeds: int, batches: int, ledger_cls: type[ActivityLedger] = ActivityLedger) -> dict[str, Any]:
    counts = {"batches": 0, "groups": 0, "pool_minutes": 0, "masks": 0, "dropped_stale": 0,
              "pruned": 0, "restores": 0}
    for seed in range(seeds):
        rng = random.Random(1000 + seed)
        lateness_m = LATENESS_M[seed % len(LATENESS_M)]
        a = ReferenceActivityLedger(lateness_m * MINUTE_MS)
        b = ledger_cls(lateness_m * MINUTE_MS, capacity=64)  # exercises growth
        horizon = a._horizon  # the reference's, not the one under test
        wm = 0
        for i, clean in enumerate(_stream(seed, batches, lateness_m)):
            batch = _stale(rng, a, clean, horizon)
            counts["dropped_stale"] += len(batch) - len(clean)
            want = a.observe(batch)
            got = b.observe(dict.fromkeys(batch) if i % 2 else batch)
            where = f"seed {seed} (lateness {lateness_m} min) batch {i} ({len(batch)} groups)"
            if want != got:
                diff = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
                raise Mismatch(f"{where}: {len(diff)} pool-minutes differ, first "
                               + ", ".join(f"{k}: reference {want.get(k)} service {got.get(k)}" for k in diff[:3]))
            if len(a) != len(b):
                raise Mismatch(f"{where}: {len(a)} workers != {len(b)}")
            counts["batches"] += 1
            counts["groups"] += len(batch)
            counts["pool_minutes"] += len(want)
            wm = max([wm, *(g[3] for g in clean)])
            everyone = i % 25 == 24 or i == batches - 1
            if i % 20 == 19:
                dropped = (a.prune(wm), b.prune(wm))
                if dropped[0] != dropped[1] or len(a) != len(b):
                    raise Mismatch(f"{where}: prune forgot {dropped} workers (reference, service), "
                                   f"{len(a)} != {len(b)} left")
                counts["pruned"] += dropped[0]
                everyone = True
            if i % 70 == 69:
                rows = {k: m.as_row() for k, m in a.items()}
                if rows != {k: m.as_row() for k, m in b.items()}:
                    raise Mismatch(f"{where}: the stored worker rows differ")
                a, b = _restored(lateness_m, a, ReferenceActivityLedger), _restored(lateness_m, b, ledger_cls)
                counts["restores"] += 1
                everyone = True
            if everyone:
                workers = [k for k, _ in a.items()]
            else:
                workers = list({g[:3] for g in rng.sample(batch, min(10, len(batch)))})
                workers += [_key(rng.randrange(1610)) for _ in range(10)]  # idle, unknown ones too
            counts["masks"] += _same_masks(where, a, b, workers)
    return {"mode": "verify", "seeds": seeds, "batches_per_seed": batches, **counts}


# ---- timing ----

Batches = list[dict[Group, None]]


def _bench_key(w: int) -> tuple[str, str, str]:
    return "main", f"bc1qbench{w // 4:06d}", f"rig{w % 4}"  # as aggregator_bench.py produces


def _to_shape(groups: list[Group], batch: int) -> Batches:
    """The fold's dicts: a batch's distinct groups, in first-seen order."""
    return [dict.fromkeys(groups[i:i + batch]) for i in range(0, len(groups), batch)]


def _backlog(keys: int, seed: int) -> Batches:
    rng = random.Random(seed)
    names = [_bench_key(w) for w in range(keys)]
    groups: list[tuple[float, Group]] = []
    for minute in range(20):
        for w in rng.sample(range(keys), 300_000 // 20):
            groups.append((minute + rng.uniform(-1.0, 1.0), (*names[w], (T0_M + minute) * MINUTE_MS)))
    groups.sort(key=lambda x: x[0])
    return _to_shape([g for _, g in groups], 5_000)


def _live(keys: int, seed: int) -> tuple[Batches, Batches]:
    """(warm-up: one group per worker, untimed; the live stream)."""
    rng = random.Random(seed)
    names = [_bench_key(w) for w in range(keys)]
    warm = [(*names[w], T0_M * MINUTE_MS) for w in range(keys)]
    active = rng.sample(range(keys), 20_000)
    groups = [(*names[w], (T0_M + minute) * MINUTE_MS) for minute in range(1, 16) for w in active]
    return _to_shape(warm, 5_000), _to_shape(groups, 5_000)


def _run(cls: type[ReferenceActivityLedger] | type[ActivityLedger], warm: Batches | None,
         shape: Batches) -> tuple[float, float, int]:
    """(seconds in observe, seconds reading back the masks of each batch's workers, pool-minutes out)."""
    ledger = cls(MAX_LATENESS_MS)
    for batch in warm or []:
        ledger.observe(batch)
    touched = [sorted({g[:3] for g in batch}) for batch in shape]
    gc.collect()
    observe, masks = ledger.observe, ledger.worker_masks
    observe_s = masks_s = 0.0
    out = 0
    for batch, keys in zip(shape, touched):
        t0 = time.perf_counter()
        out += len(observe(batch))
        t1 = time.perf_counter()
        for mask in masks(keys):
            mask.as_row()  # type: ignore[union-attr]
        masks_s += time.perf_counter() - t1
        observe_s += t1 - t0
    return observe_s, masks_s, out


def _summary(a: list[float], b: list[float], n: int) -> dict[str, Any]:
    ra, rb = [n / x for x in a], [n / x for x in b]
    ratios = [y / x for x, y in zip(ra, rb)]
    return {"a_groups_s": [round(x) for x in ra], "b_groups_s": [round(x) for x in rb],
            "ratio_b_a": [round(x, 2) for x in ratios], "median_a_groups_s": round(statistics.median(ra)),
            "median_b_groups_s": round(statistics.median(rb)), "median_ratio_b_a": round(statistics.median(ratios), 2)}


def timed(runs: int, keys: int) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": "time", "keys": keys, "runs": runs}
    live_warm, live = _live(keys, 2)
    shapes: dict[str, tuple[Batches | None, Batches]] = {"backlog": (None, _backlog(keys, 1)),
                                                         "live": (live_warm, live)}
    for name, (warm, shape) in shapes.items():
        n = sum(len(x) for x in shape)
        times: dict[str, list[float]] = {"a": [], "b": [], "a_masks": [], "b_masks": []}
        for _ in range(runs):
            for side, cls in (("a", ReferenceActivityLedger), ("b", ActivityLedger)):
                observe_s, masks_s, pool_minutes = _run(cls, warm, shape)
                times[side].append(observe_s)
                times[f"{side}_masks"].append(masks_s)
                gc.collect()
        out[name] = {"groups": n, "batches": len(shape), "pool_minutes_out": pool_minutes,
                     "observe": _summary(times["a"], times["b"], n),
                     "mask_reads_ms": {k: [round(x * 1000, 1) for x in times[k]] for k in ("a_masks", "b_masks")},
                     "mask_reads_median_time_b_over_a": round(statistics.median(
                         y / x for x, y in zip(times["a_masks"], times["b_masks"])), 2)}
    return out


def main() -> int:
    return cli.run(verify, timed, Mismatch)


if __name__ == "__main__":
    sys.exit(main())
