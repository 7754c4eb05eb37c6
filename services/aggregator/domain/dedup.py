"""Counting a repeated event_id once within the dedup horizon, in bounded memory.

Horizon basis: EVENT time, not processing time. Ids are filed in buckets of
the event's own time (`bucket_ms`), and a bucket is dropped once the stream's
watermark (the newest event time seen) has moved `horizon_ms` past both the
bucket's end and the watermark when it last took an id. A retry or a replayed
batch carries the same `ts`, so a repeat is looked up in exactly one bucket
(one probe per event), and the outcome depends only on the order of the
events, never on the wall clock: replaying a partition after a crash, or
catching up after an hour of consumer lag, dedups exactly as the first run
did. (With processing time, a consumer catching up on a backlog would see ten
minutes of stream time pass in seconds, or hours in minutes, and the answer
would depend on how fast it ran.) The "last took an id" clause keeps a late
event (older than the horizon) remembered for a full horizon after it arrived,
so its own retry is still caught.

Memory: ids are kept as 64-bit hashes, not strings. The newest buckets are
sets; a bucket older than `compact_after_ms` is frozen into a sorted
`array('q')` (8 bytes an id, probed by bisect), so ten minutes at 50,000
events/s (30 M ids) take ~250 MB instead of ~3 GB. `max_entries` is a hard cap:
past it the buckets due to expire first are dropped early (the horizon shrinks
under overload instead of memory growing), counted in `evicted`.

The default hash is Python's `hash()` (salted per process, ~free): fine for
state rebuilt in-process. State persisted across processes must use a stable
hash such as `stable_hash64`. A 64-bit collision inside one bucket (~1e-8 per
bucket of 500,000 ids) would count a fresh event as a repeat.

Journal (`journal=True`): every (hash, ts) fed is also noted, in order, and
`take_journal()` hands it over with the watermark. The aggregator stores each
batch's journal in the batch's own transaction; a new owner of the partition
`replay()`s the stored journals of the last horizon and so holds the same ids
as the old owner did, without re-reading (and re-validating) the records from
Kafka. The state is a function of the sequence fed, so the same sequence gives
the same state; only journals older than the horizon are left out, and the
ids they held had expired by the spec's measure (a bucket kept alive longer by
a late arrival may keep some of them in the old owner, never fewer).
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

__all__ = ["Deduplicator", "EventIds", "IdJournal", "stable_hash64"]


class _HasId(Protocol):
    @property
    def event_id(self) -> str: ...
    @property
    def ts_ms(self) -> int: ...


E = TypeVar("E", bound=_HasId)


def stable_hash64(event_id: str) -> int:
    """A process-independent signed 64-bit hash of an event id."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


class _Bucket:
    __slots__ = ("expires_ms", "frozen", "live")

    def __init__(self, expires_ms: int) -> None:
        self.live: set[int] = set()
        self.frozen: array[int] = array("q")
        self.expires_ms = expires_ms

    def __len__(self) -> int:
        return len(self.live) + len(self.frozen)

    def __contains__(self, h: int) -> bool:
        if h in self.live:
            return True
        frozen = self.frozen
        i = bisect_left(frozen, h)
        return i < len(frozen) and frozen[i] == h

    def compact(self) -> None:
        merged = sorted(self.live) if not self.frozen else sorted([*self.frozen, *self.live])
        self.frozen = array("q", merged)
        self.live = set()


class IdJournal:
    """The (hash, event time) pairs a deduplicator was fed, in order, and its watermark after them."""

    __slots__ = ("hashes", "ts_ms", "watermark_ms")

    def __init__(self, hashes: Iterable[int] = (), ts_ms: Iterable[int] = (), watermark_ms: int = 0) -> None:
        self.hashes = array("q", hashes)
        self.ts_ms = array("q", ts_ms)
        self.watermark_ms = watermark_ms

    def __len__(self) -> int:
        return len(self.hashes)

    def append(self, h: int, ts_ms: int) -> None:
        self.hashes.append(h)
        self.ts_ms.append(ts_ms)


class Deduplicator:
    __slots__ = (
        "_bucket_ms",
        "_buckets",
        "_compact_after_ms",
        "_entries",
        "_hash",
        "_horizon_ms",
        "_journal",
        "_max_entries",
        "_tick",
        "_watermark_ms",
        "evicted",
    )

    def __init__(
        self,
        horizon_ms: int = 10 * 60_000,
        max_entries: int = 40_000_000,
        bucket_ms: int = 10_000,
        compact_after_ms: int = 30_000,
        hash_fn: Callable[[str], int] = hash,
        journal: bool = False,
    ) -> None:
        self._buckets: dict[int, _Bucket] = {}
        self._horizon_ms = horizon_ms
        self._bucket_ms = bucket_ms
        self._compact_after_ms = compact_after_ms
        self._max_entries = max_entries
        self._hash = hash_fn
        self._watermark_ms = -(2**62)
        self._entries = 0
        self._tick = -(2**62)  # watermark bucket of the last housekeeping pass
        self.evicted = 0  # ids dropped before their horizon because of max_entries
        # Every (hash, ts) fed, in order, until taken: persisted with each batch so a new
        # owner rebuilds this exact state from the database (needs a stable hash_fn).
        self._journal = IdJournal() if journal else None

    def __len__(self) -> int:
        return self._entries

    @property
    def watermark_ms(self) -> int:
        return self._watermark_ms

    def seen_before(self, event_id: str, ts_ms: int) -> bool:
        """True if this id was seen within the horizon; otherwise remembers it."""
        h = self._hash(event_id)
        if self._journal is not None:
            self._journal.append(h, ts_ms)
        return self._seen_hash(h, ts_ms)

    @property
    def stable_hashing(self) -> bool:
        """Whether ids are hashed with `stable_hash64` (so a caller may hash them itself)."""
        return self._hash is stable_hash64

    def seen_hashes(self, hashes: Sequence[int], ts_ms: Sequence[int]) -> list[bool]:
        """`seen_before` for ids the caller hashed with `stable_hash64` (a whole batch in one
        pass, columnar): the same answers, state and journal as the ids one by one."""
        if not self.stable_hashing:
            raise ValueError("seen_hashes needs a deduplicator hashing with stable_hash64")
        if self._journal is not None:
            self._journal.hashes.extend(hashes)
            self._journal.ts_ms.extend(ts_ms)
        return list(map(self._seen_hash, hashes, ts_ms))

    def _seen_hash(self, h: int, ts_ms: int) -> bool:
        if ts_ms > self._watermark_ms:
            self._watermark_ms = ts_ms
            if ts_ms // self._bucket_ms != self._tick:
                self._housekeep()
        b = ts_ms // self._bucket_ms
        bucket = self._buckets.get(b)
        keep_until = self._watermark_ms + self._horizon_ms
        if bucket is None:
            end = (b + 1) * self._bucket_ms
            bucket = self._buckets[b] = _Bucket(max(end + self._horizon_ms, keep_until))
        elif h in bucket:
            return True
        elif keep_until > bucket.expires_ms:
            bucket.expires_ms = keep_until
        bucket.live.add(h)
        self._entries += 1
        if self._entries > self._max_entries:
            self._evict()
        return False

    def take_journal(self) -> IdJournal | None:
        """What was fed since the last call (None when not journaling); starts a new one."""
        journal = self._journal
        if journal is None:
            return None
        journal.watermark_ms = self._watermark_ms
        self._journal = IdJournal()
        return journal

    def replay(self, journal: IdJournal) -> None:
        """Feed a journal back (taking over: the same sequence gives the same state)."""
        seen = self._seen_hash
        for h, ts_ms in zip(journal.hashes, journal.ts_ms):
            seen(h, ts_ms)

    def fresh(self, events: Iterable[E]) -> list[E]:
        """The events of a batch not seen before (repeats inside the batch included), in order."""
        seen, hash_fn, journal = self._seen_hash, self._hash, self._journal
        if journal is None:
            return [e for e in events if not seen(hash_fn(e.event_id), e.ts_ms)]
        out: list[E] = []
        keep, note_hash, note_ts = out.append, journal.hashes.append, journal.ts_ms.append
        for e in events:
            h, ts = hash_fn(e.event_id), e.ts_ms
            note_hash(h)
            note_ts(ts)
            if not seen(h, ts):
                keep(e)
        return out

    def _housekeep(self) -> None:
        wm = self._watermark_ms
        self._tick = wm // self._bucket_ms
        compact_before = wm - self._compact_after_ms
        dead = []
        for b, bucket in self._buckets.items():
            if bucket.expires_ms <= wm:
                dead.append(b)
            elif (b + 1) * self._bucket_ms <= compact_before and (
                len(bucket.live) > 4096 or (bucket.live and not bucket.frozen)
            ):  # small late additions to a frozen bucket wait: merging is O(bucket)
                bucket.compact()
        for b in dead:
            self._entries -= len(self._buckets.pop(b))

    def _evict(self) -> None:
        for b in sorted(self._buckets, key=lambda k: (self._buckets[k].expires_ms, k)):
            if self._entries <= self._max_entries:
                break
            n = len(self._buckets.pop(b))
            self._entries -= n
            self.evicted += n


class EventIds:
    """The ids seen per event type: one `Deduplicator` for each of share, block and miner.

    Why not one for all: a `Deduplicator` expires ids by the newest event time
    it has seen. The sparse block and miner partitions are read far ahead of
    the dense share partition whenever there is a backlog (one fetch returns
    hours of block events but only seconds of shares), and one block event
    hours ahead would expire every share id at once: a retry split from its
    original by a batch boundary would then be counted twice. A repeat of an
    event_id is always an event of the same type, so each type keeps its own
    ids and its own watermark, and each outcome depends only on its own
    topic's order, as replays require.
    """

    __slots__ = ("_by_type",)

    KINDS = ("share", "block", "miner")

    def __init__(self, horizon_ms: int = 10 * 60_000, **options: object) -> None:
        self._by_type = {kind: Deduplicator(horizon_ms, **options) for kind in self.KINDS}  # type: ignore[arg-type]

    def __len__(self) -> int:
        return sum(len(d) for d in self._by_type.values())

    def of(self, kind: str) -> Deduplicator:
        return self._by_type[kind]

    def fresh(self, kind: str, events: Iterable[E]) -> list[E]:
        """The events (all of type `kind`) not seen before, in order."""
        return self._by_type[kind].fresh(events)

    def seen_before(self, kind: str, event_id: str, ts_ms: int) -> bool:
        """True if this id of this type was seen within the horizon; otherwise remembers it."""
        return self._by_type[kind].seen_before(event_id, ts_ms)

    def take_journals(self) -> dict[str, IdJournal]:
        """Per type, what was fed since the last call (types fed nothing left out)."""
        out = {}
        for kind, dedup in self._by_type.items():
            journal = dedup.take_journal()
            if journal:
                out[kind] = journal
        return out
