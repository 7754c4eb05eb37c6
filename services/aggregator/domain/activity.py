"""Active miners and workers per minute, counted exactly once from the share stream.

Definition (docs/aggregator.md, "Active miners and workers"): a worker is
*active in minute M* when it submitted at least one share (any status: a worker
sending only rejects is working, badly) with event time in the ten minutes
M-9 .. M; a miner is active in M when one of its workers is. `pool_metrics`
holds, per pool and minute, how many workers and miners were active in it.

How the counts stay exact with late and reordered shares: every share-minute a
worker gains (a minute it had no share in before) makes active exactly the
minutes of M .. M+9 that no earlier share-minute of that worker covered; each
such minute adds one to its pool minute's `active_workers`. The covered set
only grows, so the sum of these increments is the size of the final set
whatever the order the share-minutes came in: the same stream gives the same
rows, in any batch split, across restarts. Miners likewise, over the union of
their workers' share-minutes. A pool minute row may so exist up to nine
minutes after the newest share, carrying only activity.

State: per worker and per miner, the share-minutes of the last
`horizon_minutes` before its newest one (a MinuteMask, activity_mask.py). The
horizon covers the lateness limit plus the span: a share that is not too late
is at most `max_lateness` older than the watermark, so it never needs a bit
older than that. The masks live as rows of arrays (activity_rows.py), applied a
batch at once: the per-group walk was ~31% of the fold at 100,000 workers. Keys
are interned to rows here; pruning compacts the rows, so memory follows the
live workers, not the churn. Nothing here does I/O; the worker masks are
persisted beside each worker's liveness row (`as_row`/`restore`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final

import numpy as np

from .activity_mask import ACTIVE_SPAN_MINUTES, MinuteMask, newly_active_range
from .activity_rows import I64, NO_HEAD, MinuteRings, repeat_ranges
from .minutes import MINUTE_MS, WorkerKey

__all__ = [
    "ACTIVE_SPAN_MINUTES",
    "ActivityLedger",
    "MinuteMask",
    "newly_active_range",
]

MinerKey = tuple[str, str]
_MIN_CAPACITY: Final = 1024


class ActivityLedger:
    """The share-minutes of every worker and miner of one model, and the activity they add.

    `observe` takes a batch's worker-minutes with shares and returns the increments of
    (active_miners, active_workers) per (pool, minute start ms).
    """

    __slots__ = ("_horizon", "_miner_keys", "_miner_pool", "_miner_rows", "_miners", "_pool_ids", "_pools",
                 "_worker_keys", "_worker_miner", "_worker_rows", "_workers")

    def __init__(self, max_lateness_ms: int, capacity: int = _MIN_CAPACITY) -> None:
        # A share up to max_lateness older than the watermark asks about the span before it.
        self._horizon = -(-max_lateness_ms // MINUTE_MS) + ACTIVE_SPAN_MINUTES
        capacity = max(capacity, 1)
        self._workers = MinuteRings(self._horizon, capacity)
        self._miners = MinuteRings(self._horizon, capacity)
        # Rows 0 .. len-1 are the live keys in these lists (prune compacts them).
        self._worker_keys: list[WorkerKey] = []
        self._worker_rows: dict[WorkerKey, int] = {}
        self._miner_keys: list[MinerKey] = []
        self._miner_rows: dict[MinerKey, int] = {}
        self._worker_miner: I64 = np.zeros(capacity, dtype=np.int64)  # worker row -> miner row
        self._miner_pool: I64 = np.zeros(capacity, dtype=np.int64)  # miner row -> index in _pools
        self._pools: list[str] = []
        self._pool_ids: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._worker_keys)

    @property
    def rows_allocated(self) -> int:
        """Worker rows the arrays hold room for (live or not): what memory follows."""
        return self._workers.capacity

    def observe(self, share_minutes: Iterable[tuple[str, str, str, int]]) -> dict[tuple[str, int], list[int]]:
        """Worker-minutes (pool, miner, worker, minute start ms) that carry shares, in any
        order, repeats allowed -> {(pool, minute ms): [active miners added, active workers added]}."""
        groups = share_minutes if isinstance(share_minutes, list) else list(share_minutes)
        return self.observe_groups([g[:3] for g in groups], [g[3] for g in groups])  # type: ignore[misc]

    def observe_groups(self, keys: Sequence[WorkerKey], minute_ms: Sequence[int]) -> dict[tuple[str, int], list[int]]:
        """`observe` on the same worker-minutes as two columns: each group's worker and minute start."""
        if not keys:
            return {}
        get = self._worker_rows.get
        ids = [get(key, -1) for key in keys]  # the common case once warm: all known
        if -1 in ids:
            self._add_workers(list(dict.fromkeys(key for key, i in zip(keys, ids) if i < 0)))
            get = self._worker_rows.get
            ids = [i if i >= 0 else get(key, -1) for i, key in zip(ids, keys)]
        rows = np.array(ids, dtype=np.int64)
        minutes = np.array(minute_ms, dtype=np.int64) // MINUTE_MS
        return self._observe_rows(rows, minutes)

    def _observe_rows(self, w_rows: I64, t: I64) -> dict[tuple[str, int], list[int]]:
        wr, wlo, whi = self._workers.apply(w_rows, t)
        mr, mlo, mhi = self._miners.apply(self._worker_miner[w_rows], t)
        # Runs -> +1/-1 edges per (pool, minute); a prefix sum gives each minute's count.
        w_pool, m_pool = self._miner_pool[self._worker_miner[wr]], self._miner_pool[mr]
        pool = np.concatenate([w_pool, w_pool, m_pool, m_pool])
        marks = np.concatenate([wlo, whi, mlo, mhi])
        if not len(marks):
            return {}
        nw, nm = len(wr), len(mr)
        w_step = np.concatenate([np.ones(nw), -np.ones(nw), np.zeros(2 * nm)])
        m_step = np.concatenate([np.zeros(2 * nw), np.ones(nm), -np.ones(nm)])
        m0 = int(marks.min())
        edge, inverse = np.unique((pool << 32) | (marks - m0), return_inverse=True)
        workers = np.cumsum(np.bincount(inverse, weights=w_step, minlength=len(edge)))
        miners = np.cumsum(np.bincount(inverse, weights=m_step, minlength=len(edge)))
        # Every pool's edges sum to zero, so a count never runs on past its pool's last edge.
        length = np.zeros(len(edge), dtype=np.int64)
        length[:-1] = edge[1:] - edge[:-1]
        some = (workers != 0) | (miners != 0)
        owner, minute = repeat_ranges((edge & 0xFFFFFFFF)[some] + m0, length[some])
        src = np.flatnonzero(some)[owner]
        names = self._pools
        return {(names[p], at): [m, w] for p, at, m, w in zip(
            (edge >> 32)[src].tolist(), (minute * MINUTE_MS).tolist(),
            miners[src].astype(np.int64).tolist(), workers[src].astype(np.int64).tolist())}

    def worker_mask(self, key: WorkerKey) -> MinuteMask | None:
        row = self._worker_rows.get(key)
        return None if row is None else self._workers.read(row)

    def worker_masks(self, keys: Iterable[WorkerKey]) -> list[MinuteMask | None]:
        """worker_mask of each key, read back together (a batch's worker_status rows)."""
        get = self._worker_rows.get
        rows = [get(key, -1) for key in keys]
        masks = iter(self._workers.read_many([row for row in rows if row >= 0]))
        return [next(masks) if row >= 0 else None for row in rows]

    def miner_mask(self, key: MinerKey) -> MinuteMask | None:
        row = self._miner_rows.get(key)
        return None if row is None else self._miners.read(row)

    def restore(self, masks: Mapping[WorkerKey, MinuteMask]) -> None:
        """Seed from persisted worker masks (a key's replaces what it had); a miner's is the
        union of its workers'. A mask without share-minutes marks nothing and is skipped."""
        fresh = {key: mask for key, mask in masks.items() if mask.bits}
        if not fresh:
            return
        new = [key for key in fresh if key not in self._worker_rows]
        if new:
            self._add_workers(new)
        self._workers.write([self._worker_rows[key] for key in fresh], list(fresh.values()))
        # Unions in Python ints, one per miner, written once (restoring is once per takeover).
        unions: dict[int, MinuteMask] = {}
        heads = self._miners.head
        for key, mask in fresh.items():
            row = self._miner_rows[(key[0], key[1])]
            owner = unions.get(row)
            if owner is None:
                had = int(heads[row]) != NO_HEAD
                owner = unions[row] = self._miners.read(row) if had else MinuteMask(mask.base, mask.bits)
                if not had:
                    continue
            owner.union(mask, self._horizon)
        self._miners.write(list(unions), list(unions.values()))

    def prune(self, watermark_ms: int) -> int:
        """Forget masks whose newest minute is past the horizon of the watermark: no share
        that is not too late can reach them. Returns how many workers were forgotten."""
        oldest = watermark_ms // MINUTE_MS - self._horizon
        n_workers, n_miners = len(self._worker_keys), len(self._miner_keys)
        live_w = np.flatnonzero(self._workers.head[:n_workers] >= oldest)
        alive_m = self._miners.head[:n_miners] >= oldest
        # A miner's head is its workers' newest: it outlives them all; kept so, whatever happens.
        alive_m[self._worker_miner[live_w]] = True
        if len(live_w) == n_workers and alive_m.all():
            return 0
        live_m = np.flatnonzero(alive_m)
        renumber = np.full(max(n_miners, 1), -1, dtype=np.int64)
        renumber[live_m] = np.arange(len(live_m), dtype=np.int64)
        # Live rows move to the front in order: no holes, and memory shrinks with the live keys.
        self._worker_keys = [self._worker_keys[i] for i in live_w.tolist()]
        self._worker_rows = {key: row for row, key in enumerate(self._worker_keys)}
        self._miner_keys = [self._miner_keys[i] for i in live_m.tolist()]
        self._miner_rows = {key: row for row, key in enumerate(self._miner_keys)}
        capacity = _fitted(len(live_w), self._workers.capacity)
        self._workers.resize(capacity, live_w)
        self._worker_miner = _resized(renumber[self._worker_miner[live_w]], capacity)
        capacity = _fitted(len(live_m), self._miners.capacity)
        self._miners.resize(capacity, live_m)
        self._miner_pool = _resized(self._miner_pool[live_m], capacity)
        return n_workers - len(live_w)

    def items(self) -> Iterator[tuple[WorkerKey, MinuteMask]]:
        return iter(list(zip(self._worker_keys, self._workers.read_many(range(len(self._worker_keys))))))

    def _add_workers(self, new: Sequence[WorkerKey]) -> None:
        """Rows for distinct new keys, appended in order; new miners and pools with them."""
        rows, miners, pools = self._worker_rows, self._miner_rows, self._pool_ids
        first_w, first_m = len(self._worker_keys), len(self._miner_keys)
        owners: list[int] = []
        miner_pools: list[int] = []
        for key in new:
            rows[key] = len(self._worker_keys)
            self._worker_keys.append(key)
            miner_key = (key[0], key[1])
            miner = miners.get(miner_key)
            if miner is None:
                miner = miners[miner_key] = len(self._miner_keys)
                self._miner_keys.append(miner_key)
                pool = pools.get(key[0])
                if pool is None:
                    pool = pools[key[0]] = len(self._pools)
                    self._pools.append(key[0])
                miner_pools.append(pool)
            owners.append(miner)
        n_workers, n_miners = len(self._worker_keys), len(self._miner_keys)
        if n_workers > self._workers.capacity:  # doubling: amortised O(1) copies per key
            capacity = max(n_workers, 2 * self._workers.capacity)
            self._workers.resize(capacity)
            self._worker_miner = _resized(self._worker_miner, capacity)
        if n_miners > self._miners.capacity:
            capacity = max(n_miners, 2 * self._miners.capacity)
            self._miners.resize(capacity)
            self._miner_pool = _resized(self._miner_pool, capacity)
        self._worker_miner[first_w:n_workers] = owners
        self._miner_pool[first_m:n_miners] = miner_pools


def _fitted(live: int, capacity: int) -> int:
    """Capacity after a prune: halved while a quarter or less is live (so it cannot flap)."""
    while capacity > _MIN_CAPACITY and 4 * live <= capacity:
        capacity //= 2
    return max(capacity, live, 1)


def _resized(values: I64, capacity: int) -> I64:
    out = np.zeros(capacity, dtype=np.int64)
    out[: min(len(values), capacity)] = values[:capacity]
    return out
