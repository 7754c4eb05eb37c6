"""Dedup and lateness of a batch of share columns, as array operations (lateness: the service's).

Lateness is exact: the watermark before each event is the running maximum of the
event times before it (a too-late event is below the watermark, so letting it
into the maximum changes nothing), which is what ingest_shares' loop computes.

Dedup is a prototype of the same rule as domain.dedup.Deduplicator (ids kept per
10 s bucket of event time, the bucket dropped once the watermark is a horizon past
both its end and the watermark when it last took an id): repeats inside the batch
by np.unique, repeats of earlier batches by one sorted-array probe per event.
One simplification, measured as such: buckets expire at batch boundaries, not
event by event, so an event older than the horizon at some point inside a batch
may still be caught as a repeat where the event-by-event rule would forget it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from services.aggregator.consume.columnar_fold import Kept, lateness

from .decode import ShareColumns

__all__ = ["ColumnarDedup", "Kept", "lateness"]

I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class _Bucket:
    chunks: list[I64] = field(default_factory=list)  # sorted hash arrays, one per batch that added ids
    expires_ms: int = 0

    def contains(self, hashes: I64) -> npt.NDArray[np.bool_]:
        found = np.zeros(len(hashes), np.bool_)
        for chunk in self.chunks:
            at = np.minimum(np.searchsorted(chunk, hashes), len(chunk) - 1)
            found |= chunk[at] == hashes
        return found

    def add(self, hashes: I64) -> None:
        self.chunks.append(np.sort(hashes))
        if len(self.chunks) > 8:  # bound the probes per event: merge into one sorted array
            self.chunks = [np.sort(np.concatenate(self.chunks))]


class ColumnarDedup:
    def __init__(self, horizon_ms: int = 10 * 60_000, bucket_ms: int = 10_000) -> None:
        self._horizon_ms = horizon_ms
        self._bucket_ms = bucket_ms
        self._buckets: dict[int, _Bucket] = {}
        self.watermark_ms = -(2**62)

    def fresh(self, cols: ShareColumns) -> I64:
        """Positions of the batch's events not seen before (first of a repeat in the batch kept)."""
        n = len(cols)
        if n == 0:
            return np.zeros(0, np.int64)
        hashes = np.fromiter(map(hash, cols.event_id), np.int64, n)
        buckets = cols.ts // self._bucket_ms
        # The first of each (hash, bucket) in the batch: the event-by-event rule probes an id in
        # its own event time's bucket only, so the same id in another bucket is not a repeat.
        order = np.lexsort((buckets, hashes))  # stable: equal keys stay in stream order
        h, b = hashes[order], buckets[order]
        starts = np.ones(n, np.bool_)
        starts[1:] = (h[1:] != h[:-1]) | (b[1:] != b[:-1])
        candidate = np.sort(order[starts])
        bucket_of = buckets[candidate]
        seen = np.zeros(len(candidate), np.bool_)
        for b in np.unique(bucket_of).tolist():
            bucket = self._buckets.get(b)
            if bucket is not None:
                here = np.flatnonzero(bucket_of == b)
                seen[here] = bucket.contains(hashes[candidate[here]])
        keep = candidate[~seen]
        self._remember(hashes[keep], cols.ts[keep])
        return keep

    def _remember(self, hashes: I64, ts: I64) -> None:
        if len(ts) == 0:
            return
        # Running watermark at each event (as the event-by-event rule sees it when filing the id).
        wm = np.maximum.accumulate(np.maximum(ts, self.watermark_ms))
        bucket_of = ts // self._bucket_ms
        for b in np.unique(bucket_of).tolist():
            here = bucket_of == b
            keep_until = int(wm[here].max()) + self._horizon_ms
            bucket = self._buckets.get(b)
            if bucket is None:
                bucket = self._buckets[b] = _Bucket(expires_ms=(b + 1) * self._bucket_ms + self._horizon_ms)
            bucket.expires_ms = max(bucket.expires_ms, keep_until)
            bucket.add(hashes[here])
        self.watermark_ms = int(wm[-1])
        for b in [b for b, bucket in self._buckets.items() if bucket.expires_ms <= self.watermark_ms]:
            del self._buckets[b]
