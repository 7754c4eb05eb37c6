"""PoolAggregate._apply with the workers' WindowRows (the service) vs the per-key
WindowAccumulator it replaced (issue 15), and the export reads of both, in one run.

    .venv/bin/python bench/model_apply_bench.py [--runs 3] [--keys 100000]

Inputs are built before timing: folded batches as the fold hands them to the model
(dict of (pool, miner, worker, minute) -> MinuteStats for the old model, the same groups as
columns for the service's (domain/groups.py), pool roll-ups precomputed),
100,000 workers of 20,000 miners, batches of 5,000 groups:
  backlog  300,000 groups over 20 minutes of event time, +-1 minute of disorder;
  live     every worker warmed with one group (untimed), then 20,000 workers with a
           group every minute for 15 minutes.
After `live`, the export reads are timed on the same models:
  rank     the exporter's ranking: every worker's totals (old: totals per key; new:
           totals_many per chunk of 2,000, as exporter.rank does);
  tick     a snapshot tick: 5,000 workers' figures and their miners' (old: per-key
           totals; new: read_ahead per tick, then the same per-key calls).
old (the previous _apply, kept below as the reference) and new alternate, `--runs`
each; one JSON line: seconds per run, new/old speed ratio per run and the median.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.aggregator.domain.accumulator import WindowAccumulator, WindowTotals  # noqa: E402
from services.aggregator.domain.export_figures import miner_figures, worker_figures  # noqa: E402
from services.aggregator.domain.groups import MinuteGroups  # noqa: E402
from services.aggregator.domain.minutes import (  # noqa: E402
    MINUTE_MS,
    MinuteStats,
    PoolMinuteKey,
    WorkerKey,
    WorkerMinuteKey,
    roll_up_pools,
)
from services.aggregator.domain.model import PoolAggregate  # noqa: E402

T0_MS = 1_780_000_000_000 - 1_780_000_000_000 % (60 * MINUTE_MS)  # an hour boundary
Batch = tuple[dict[WorkerMinuteKey, MinuteStats], dict[PoolMinuteKey, MinuteStats], MinuteGroups]
_UNITS = 2**80  # MinuteStats.difficulty_units per unit of difficulty


class _PerKeyWorkers(WindowAccumulator[WorkerKey]):
    """totals_list as export_figures read miners before issue 15: totals per key."""

    def totals_list(self, keys: Sequence[WorkerKey], as_of_ms: int) -> list[WindowTotals]:
        return [self.totals(k, as_of_ms) for k in keys]


class PerKeyModel(PoolAggregate):
    """The model as it was before issue 15: WindowAccumulator.add per group."""

    def __init__(self) -> None:
        super().__init__(prune_every_ms=None)
        self.workers = _PerKeyWorkers()  # type: ignore[assignment]

    def _apply(self, deltas: dict[WorkerMinuteKey, MinuteStats],  # type: ignore[override]
               pool_deltas: dict[PoolMinuteKey, MinuteStats]) -> None:
        add = self.workers.add
        observe = self.liveness.observe_minute
        for (pool, miner, worker, minute), stats in deltas.items():
            key = (pool, miner, worker)
            accepted = stats.accepted
            submitted = accepted + stats.rejected + stats.stale
            difficulty = stats.difficulty_accepted
            if add(key, minute, accepted, submitted, difficulty):
                self._miner_workers.setdefault((pool, miner), []).append(worker)
            if stats.last_share_ms:
                observe(key, minute, submitted, stats.last_share_ms, accepted, difficulty)
        for (pool, minute), stats in pool_deltas.items():
            self.pools.add(pool, minute, stats.accepted, stats.submitted, stats.difficulty_accepted)
        self._prune_as_event_time_passes()


def _key(k: int) -> WorkerKey:
    return ("main", f"m{k // 5}", f"w{k % 5}")


def _stats(rng: random.Random, minute_ms: int) -> MinuteStats:
    submitted = rng.randint(1, 40)
    accepted = rng.randint(0, submitted)
    return MinuteStats(accepted=accepted, rejected=submitted - accepted,
                       difficulty_units=accepted * rng.randint(1, 1000) * _UNITS,
                       last_share_ms=minute_ms + rng.randrange(MINUTE_MS))


def _batches(groups: list[tuple[int, int]], rng: random.Random, size: int = 5_000) -> list[Batch]:
    out = []
    for i in range(0, len(groups), size):
        deltas = {(*_key(k), m): _stats(rng, m) for k, m in groups[i:i + size]}
        out.append((deltas, roll_up_pools(deltas), MinuteGroups.of_deltas(deltas)))
    return out


def _backlog(keys: int) -> list[Batch]:
    rng = random.Random(1)
    groups: list[tuple[float, tuple[int, int]]] = []
    for minute in range(20):
        for k in rng.sample(range(keys), min(keys, 15_000)):
            groups.append((minute + rng.uniform(-1.0, 1.0), (k, T0_MS + minute * MINUTE_MS)))
    groups.sort(key=lambda x: x[0])
    return _batches([g for _, g in groups], rng)


def _live(keys: int) -> tuple[list[Batch], list[Batch]]:
    rng = random.Random(2)
    active = rng.sample(range(keys), min(keys, 20_000))
    stream = [(k, T0_MS + m * MINUTE_MS) for m in range(1, 16) for k in active]
    return _batches([(k, T0_MS) for k in range(keys)], rng), _batches(stream, rng)


def _apply_all(model: PoolAggregate, batches: list[Batch]) -> float:
    gc.collect()
    t = time.perf_counter()
    per_key = isinstance(model, PerKeyModel)  # the old model takes the dict, the service's the columns
    for deltas, pools, groups in batches:
        model._apply(deltas if per_key else groups, pools)  # type: ignore[arg-type]
    return time.perf_counter() - t


def _rank(model: PoolAggregate, as_of_ms: int, new: bool) -> float:
    keys = list(model.workers.keys())
    t = time.perf_counter()
    ranked: dict[tuple[str, str], float] = {}
    if new:
        for start in range(0, len(keys), 2_000):
            chunk = keys[start:start + 2_000]
            values = model.workers.totals_many(chunk, as_of_ms).difficulty[:, 3].tolist()  # type: ignore[union-attr]
            for key, v in zip(chunk, values, strict=True):
                ranked[key[:2]] = ranked.get(key[:2], 0.0) + v  # type: ignore[index]
    else:
        for key in keys:
            ranked[key[:2]] = ranked.get(key[:2], 0.0) + model.workers.totals(key, as_of_ms).difficulty[3]  # type: ignore[index]
    return time.perf_counter() - t


def _tick(model: PoolAggregate, as_of_ms: int, new: bool, tick_keys: list[WorkerKey]) -> float:
    t = time.perf_counter()
    if new:
        miners = {k[:2] for k in tick_keys}
        model.workers.read_ahead(  # type: ignore[union-attr]
            [("main", m[1], f"w{i}") for m in miners for i in range(5)] + tick_keys, as_of_ms)
    for key in tick_keys:
        worker_figures(model, key, as_of_ms, as_of_ms)
    for pool, miner in {k[:2] for k in tick_keys}:
        miner_figures(model, pool, miner, [f"w{i}" for i in range(5)], as_of_ms, as_of_ms)
    return time.perf_counter() - t


def timed(runs: int, keys: int) -> dict[str, Any]:
    backlog = _backlog(keys)
    warm, live = _live(keys)
    tick_keys = [_key(k) for k in random.Random(3).sample(range(keys), min(keys, 5_000))]
    as_of = T0_MS + 17 * MINUTE_MS
    res: dict[str, dict[str, list[float]]] = {
        n: {"old": [], "new": []} for n in ("backlog", "live", "rank", "tick")}
    makers: dict[str, Callable[[], PoolAggregate]] = {"old": PerKeyModel,
                                                      "new": lambda: PoolAggregate(prune_every_ms=None)}
    for _ in range(runs):
        for side, make in makers.items():
            res["backlog"][side].append(_apply_all(make(), backlog))
            model = make()
            _apply_all(model, warm)
            res["live"][side].append(_apply_all(model, live))
            res["rank"][side].append(_rank(model, as_of, side == "new"))
            res["tick"][side].append(_tick(model, as_of + MINUTE_MS, side == "new", tick_keys))
            del model
    out: dict[str, Any] = {"keys": keys, "runs": runs, "groups": {
        "backlog": sum(len(d) for d, _, _ in backlog), "live": sum(len(d) for d, _, _ in live)}}
    for name, r in res.items():
        ratios = [o / n for o, n in zip(r["old"], r["new"], strict=True)]  # > 1: new is faster
        out[name] = {"old_s": [round(x, 4) for x in r["old"]], "new_s": [round(x, 4) for x in r["new"]],
                     "speedup_new_over_old": [round(x, 2) for x in ratios],
                     "median_speedup": round(statistics.median(ratios), 2)}
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--keys", type=int, default=100_000)
    args = p.parse_args()
    print(json.dumps(timed(args.runs, args.keys)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
