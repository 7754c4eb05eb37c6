"""Worker liveness from each worker's own share rate, plus connection events.

A worker hashing at rate r (shares per ms) leaves a silence of t ms with
probability exp(-r * t). Declaring it offline once the silence exceeds K / r
(K = 14: exp(-14) ~ 8.3e-7, about one false alarm per million share gaps)
catches a fast worker that stops within seconds, and does not flap a slow one
(1 share a minute gets 14 minutes). The threshold is clamped to
[floor_ms, ceiling_ms]: the floor absorbs network jitter and batching delays,
the ceiling bounds how long a worker that vanished with too little history
stays "online". A worker with no usable rate yet gets the ceiling.

Rate estimate: from two consecutive buckets of event time (`rate_bucket_ms`,
default 15 min), so it rests on 15-30 minutes of the worker's own recent
history, or on its whole life if younger. It is measured as WORK (accepted
difficulty per ms) and divided by the worker's current share difficulty:
vardiff raises a worker's difficulty (often 4x at a time) and its share rate
drops at once while its hashrate does not, so a plain share count would keep
the old, faster rate for half an hour and flap the worker offline. Two
deliberate biases towards a longer, safer threshold: one share's worth is
taken off the count (the span ends on a share: the Poisson end-point bias),
the rate is lowered by one standard error, factor (1 - 1/sqrt(n)) for n
share gaps, and below `min_gaps` gaps there is no rate at all (the ceiling
applies), so a young worker whose first three shares came in ten seconds is
not given a 60 s threshold. For a steady 1 share/min worker the threshold comes out at about
15-20 minutes.

Connections: each node's newest connected/disconnected event per worker is
kept (event time; on equal times "disconnected" wins, so arrival order does
not matter). A worker with a connection left is online while its share rate
says so; with none left it is offline at once, unless a share arrives after
the disconnect (then it is back, even if its connect event was lost). A
connected event counts as activity, so a worker is online right after
connecting and until the ceiling passes with no share.

Liveness is judged at a time the caller passes (export_figures.liveness_time_ms):
the event-time watermark while the consumer lags (lag then cannot fake
outages); caught up, the watermark moved on by the wall time since it arrived,
which is the wall clock for a live stream and the data's own time after a
backfill.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from .minutes import WorkerKey

__all__ = ["DEFAULT_K", "Liveness"]

DEFAULT_K: Final = 14.0


@dataclass(slots=True)
class _Worker:
    threshold_ms: int  # 0 = stale: recomputed when next judged (observations are hotter)
    last_share_ms: int = 0  # newest share ts; 0 = none yet
    first_ms: int = 0  # start of this worker's observed history (for the rate span)
    bucket: int = -(2**62)  # index of the current rate bucket
    count_cur: int = 0  # shares (any status) in the current / previous bucket
    count_prev: int = 0
    work_cur: float = 0.0  # accepted difficulty in the current / previous bucket
    work_prev: float = 0.0
    share_difficulty: float = 0.0  # mean accepted difficulty of the newest minute; 0 = unknown
    share_difficulty_ms: int = 0  # the newest minute that set it
    connected_ms: int = 0  # newest connect ts (activity)
    # node -> (ts_ms of newest event, connected?)
    nodes: dict[str, tuple[int, bool]] | None = field(default=None)


class Liveness:
    """Online/offline state of workers keyed by (pool, miner, worker)."""

    __slots__ = ("_bucket_ms", "_ceiling_ms", "_floor_ms", "_k", "_min_gaps", "_workers")

    def __init__(
        self,
        k: float = DEFAULT_K,
        floor_ms: int = 60_000,
        ceiling_ms: int = 30 * 60_000,
        rate_bucket_ms: int = 15 * 60_000,
        min_gaps: int = 10,
    ) -> None:
        if not 0 < floor_ms <= ceiling_ms:
            raise ValueError("need 0 < floor_ms <= ceiling_ms")
        self._workers: dict[WorkerKey, _Worker] = {}
        self._k = k
        self._floor_ms = floor_ms
        self._ceiling_ms = ceiling_ms
        self._bucket_ms = rate_bucket_ms
        self._min_gaps = max(min_gaps, 2)

    def __contains__(self, key: object) -> bool:
        return key in self._workers

    def __len__(self) -> int:
        return len(self._workers)

    def _worker(self, key: WorkerKey) -> _Worker:
        w = self._workers.get(key)
        if w is None:
            w = self._workers[key] = _Worker(0)
        return w

    # --- observations ---------------------------------------------------------

    def observe_share(self, key: WorkerKey, ts_ms: int, difficulty: float | None = None) -> None:
        """One share (any status: a rejected share still proves the worker runs);
        `difficulty` only for an accepted share."""
        if difficulty is None:
            self.observe_minute(key, ts_ms, 1, ts_ms)
        else:
            self.observe_minute(key, ts_ms, 1, ts_ms, 1, difficulty)

    def observe_minute(
        self,
        key: WorkerKey,
        first_ts_ms: int,
        shares: int,
        last_share_ms: int,
        accepted: int = 0,
        difficulty: float = 0.0,
    ) -> None:
        """A batch of `shares` shares (of which `accepted`, worth `difficulty` in all),
        at or before `last_share_ms` and within one rate bucket (a folded minute:
        pass its minute start as `first_ts_ms`)."""
        self.observe_minutes((key,), (first_ts_ms,), (shares,), (last_share_ms,), (accepted,), (difficulty,))

    def observe_minutes(
        self,
        keys: Sequence[WorkerKey],
        first_ts_ms: Sequence[int],
        shares: Sequence[int],
        last_share_ms: Sequence[int],
        accepted: Sequence[int],
        difficulty: Sequence[float],
    ) -> None:
        """`observe_minute` for each group of a batch, in order (columns of equal length); a
        group without shares or without a last share (0: a row of blocks only) is skipped."""
        workers = self._workers
        get = workers.get
        bucket_ms = self._bucket_ms
        for key, first, n, last, acc, work in zip(keys, first_ts_ms, shares, last_share_ms, accepted, difficulty,
                                                  strict=True):
            if n <= 0 or not last:
                continue
            w = get(key)
            if w is None:
                w = workers[key] = _Worker(0)
            if w.first_ms == 0 or first < w.first_ms:
                w.first_ms = first
            b = last // bucket_ms
            if b > w.bucket:
                adjacent = b == w.bucket + 1
                w.count_prev = w.count_cur if adjacent else 0
                w.work_prev = w.work_cur if adjacent else 0.0
                w.count_cur = 0
                w.work_cur = 0.0
                w.bucket = b
            if b == w.bucket:
                w.count_cur += n
                w.work_cur += work
            elif b == w.bucket - 1:
                w.count_prev += n
                w.work_prev += work
            if acc > 0 and first >= w.share_difficulty_ms:
                w.share_difficulty = work / acc
                w.share_difficulty_ms = first
            if last > w.last_share_ms:
                w.last_share_ms = last
            w.threshold_ms = 0

    def observe_connection(
        self, key: WorkerKey, node: str, state: Literal["connected", "disconnected"], ts_ms: int
    ) -> None:
        w = self._worker(key)
        connected = state == "connected"
        if w.nodes is None:
            w.nodes = {}
        prev = w.nodes.get(node)
        if prev is None or ts_ms > prev[0] or (ts_ms == prev[0] and not connected):
            w.nodes[node] = (ts_ms, connected)
        if connected and ts_ms > w.connected_ms:
            w.connected_ms = ts_ms

    def restore_connections(
        self, key: WorkerKey, nodes: dict[str, tuple[int, bool]], connected_ms: int
    ) -> None:
        """Put back the connections `status` returned (merging with anything newer)."""
        w = self._worker(key)
        for node, (ts_ms, connected) in nodes.items():
            self.observe_connection(key, node, "connected" if connected else "disconnected", ts_ms)
        w.connected_ms = max(w.connected_ms, connected_ms)

    # --- judgement ------------------------------------------------------------

    def _threshold(self, w: _Worker) -> int:
        if w.threshold_ms:
            return w.threshold_ms
        rate = self._rate_per_ms(w)
        if rate is None:
            w.threshold_ms = self._ceiling_ms
        else:
            w.threshold_ms = int(min(max(self._k / rate, self._floor_ms), self._ceiling_ms))
        return w.threshold_ms

    def _rate_per_ms(self, w: _Worker) -> float | None:
        start = max(w.first_ms, (w.bucket - 1) * self._bucket_ms)
        gaps = w.count_cur + w.count_prev - 1
        span = w.last_share_ms - start
        if gaps < self._min_gaps or span <= 0:
            return None
        work = w.work_cur + w.work_prev
        # shares the work is worth at today's difficulty; the plain count without work
        shares = work / w.share_difficulty if work > 0.0 and w.share_difficulty else gaps + 1
        return max(shares - 1.0, 0.0) / span * (1.0 - 1.0 / math.sqrt(gaps)) or None

    def rate_per_s(self, key: WorkerKey) -> float | None:
        """The worker's estimated share rate (shares/s), None without enough history."""
        w = self._workers.get(key)
        rate = None if w is None else self._rate_per_ms(w)
        return None if rate is None else rate * 1000.0

    def detection_bound_ms(self, key: WorkerKey) -> int | None:
        """Silence after its last activity after which this worker is declared offline:
        a worker that stops is reported offline at most this long after it stopped."""
        w = self._workers.get(key)
        return None if w is None else self._threshold(w)

    def offline_deadline_ms(self, key: WorkerKey) -> int | None:
        """When the worker is (or was) declared offline if nothing more is heard."""
        w = self._workers.get(key)
        return None if w is None else self._deadline(w)

    def _deadline(self, w: _Worker) -> int:
        gone = _disconnected_at(w)
        if gone is not None:
            return gone
        return max(w.last_share_ms, w.connected_ms) + self._threshold(w)

    def status(self, key: WorkerKey) -> tuple[int, int | None, dict[str, tuple[int, bool]], int] | None:
        """(offline_deadline_ms, last_share_ms, each node's newest (ts_ms, connected), newest
        connect ts_ms) in one lookup, to persist a worker's row; None for an unknown worker."""
        w = self._workers.get(key)
        if w is None:
            return None
        return self._deadline(w), w.last_share_ms or None, dict(w.nodes or {}), w.connected_ms

    def is_online(self, key: WorkerKey, now_ms: int) -> bool:
        w = self._workers.get(key)
        return w is not None and self._online(w, now_ms)

    def _online(self, w: _Worker, now_ms: int) -> bool:
        if w.nodes and _disconnected_at(w) is not None:
            return False
        last = max(w.connected_ms, w.last_share_ms)
        return now_ms - last <= (w.threshold_ms or self._threshold(w))

    def last_share_ms(self, key: WorkerKey) -> int | None:
        w = self._workers.get(key)
        return None if w is None or w.last_share_ms == 0 else w.last_share_ms

    def online_workers(self, now_ms: int, pool: str | None = None) -> Iterator[WorkerKey]:
        for key, w in self._workers.items():
            if (pool is None or key[0] == pool) and self._online(w, now_ms):
                yield key

    def active_workers(self, now_ms: int, pool: str | None = None) -> int:
        return sum(1 for _ in self.online_workers(now_ms, pool))

    def active_miners(self, now_ms: int, pool: str | None = None) -> int:
        return len({(key[0], key[1]) for key in self.online_workers(now_ms, pool)})

    def prune(self, now_ms: int, retention_ms: int = 24 * 3_600_000) -> int:
        """Forget workers offline for longer than `retention_ms`; returns how many."""
        dead = [
            key
            for key, w in self._workers.items()
            if not self._online(w, now_ms)
            and now_ms - max(w.last_share_ms, w.connected_ms) > retention_ms
        ]
        for key in dead:
            del self._workers[key]
        return len(dead)


def _disconnected_at(w: _Worker) -> int | None:
    """Newest disconnect ts if no connection is left and no share came after it."""
    nodes = w.nodes
    if not nodes:
        return None
    newest = 0
    for ts, connected in nodes.values():
        if connected:
            return None
        newest = max(newest, ts)
    return newest if w.last_share_ms <= newest else None

