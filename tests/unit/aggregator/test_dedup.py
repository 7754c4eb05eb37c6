"""Deduplication by event_id within an event-time horizon, in bounded memory."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from services.aggregator.domain.dedup import Deduplicator, EventIds, stable_hash64

from .samples import MIN, T0_MS

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Ev:
    event_id: str
    ts_ms: int


def test_repeat_within_the_horizon_counts_once() -> None:
    d = Deduplicator(horizon_ms=10 * MIN)
    assert not d.seen_before("a", T0_MS)
    for later in (1, MIN, 9 * MIN):  # the stream moves on, the retry still comes
        d.seen_before(f"other-{later}", T0_MS + later)
        assert d.seen_before("a", T0_MS)


def test_repeat_after_the_horizon_counts_again() -> None:
    d = Deduplicator(horizon_ms=10 * MIN, bucket_ms=10_000)
    assert not d.seen_before("a", T0_MS)
    d.seen_before("tick", T0_MS + 10 * MIN + 10_000)  # bucket end + horizon reached
    assert not d.seen_before("a", T0_MS)


def test_late_event_is_remembered_a_horizon_after_it_arrived() -> None:
    d = Deduplicator(horizon_ms=10 * MIN)
    d.seen_before("now", T0_MS + 60 * MIN)
    assert not d.seen_before("late", T0_MS)  # an hour old, far beyond the horizon
    d.seen_before("tick", T0_MS + 65 * MIN)
    assert d.seen_before("late", T0_MS)  # its retry five minutes later is caught
    d.seen_before("tick2", T0_MS + 71 * MIN)
    assert not d.seen_before("late", T0_MS)


def test_compacted_buckets_still_answer() -> None:
    d = Deduplicator(compact_after_ms=20_000, bucket_ms=10_000)
    ids = [f"id{i}" for i in range(5_000)]
    for i, eid in enumerate(ids):
        d.seen_before(eid, T0_MS + i % 10_000)
    d.seen_before("tick", T0_MS + 2 * MIN)  # the first bucket is frozen into an array now
    assert all(d.seen_before(eid, T0_MS + i % 10_000) for i, eid in enumerate(ids))
    assert not d.seen_before("new-late", T0_MS + 5)  # a late addition to a frozen bucket
    assert d.seen_before("new-late", T0_MS + 5)
    assert len(d) == 5_000 + 2


def test_batch_form_keeps_order_and_drops_repeats_inside_the_batch() -> None:
    d = Deduplicator()
    batch = [Ev("a", T0_MS), Ev("b", T0_MS + 1), Ev("a", T0_MS), Ev("c", T0_MS + 2)]
    assert [e.event_id for e in d.fresh(batch)] == ["a", "b", "c"]
    assert d.fresh([Ev("b", T0_MS + 1), Ev("d", T0_MS + 3)]) == [Ev("d", T0_MS + 3)]


def test_outcome_does_not_depend_on_batch_boundaries() -> None:
    rng = random.Random(4)
    events = []
    for i in range(20_000):
        ts = T0_MS + i * 50 - rng.choice([0, 0, 0, 5_000, 11 * MIN, 60 * MIN])
        events.append(Ev(f"e{rng.randrange(8_000)}", ts))
    one = Deduplicator(hash_fn=stable_hash64).fresh(events)
    split = Deduplicator(hash_fn=stable_hash64)
    pieces: list[Ev] = []
    i = 0
    while i < len(events):
        n = rng.randrange(1, 700)
        pieces += split.fresh(events[i : i + n])
        i += n
    assert pieces == one


def test_memory_stays_bounded_under_a_million_ids() -> None:
    cap = 100_000
    d = Deduplicator(horizon_ms=10 * MIN, max_entries=cap)
    for i in range(1_000_000):  # 1,000 ids a second of event time for 1,000 s
        assert not d.seen_before(f"evt-{i}", T0_MS + i)
        if i % 50_000 == 0:
            assert len(d) <= cap
    assert len(d) <= cap
    assert d.evicted >= 1_000_000 - cap


def test_horizon_alone_bounds_memory() -> None:
    d = Deduplicator(horizon_ms=MIN, bucket_ms=1_000)
    for i in range(200_000):  # 1,000 ids/s for 200 s; the horizon holds ~61 s of them
        d.seen_before(str(i), T0_MS + i)
    assert len(d) <= 62_000
    assert d.evicted == 0


def test_stable_hash_is_process_independent() -> None:
    assert stable_hash64("n1-000001") == stable_hash64("n1-000001")
    assert stable_hash64("n1-000001") != stable_hash64("n1-000002")
    assert -(2**63) <= stable_hash64("x") < 2**63
    assert stable_hash64("abc") == 6455300059550759896  # pinned: persisted state depends on it


def test_each_event_type_keeps_its_own_ids_and_watermark() -> None:
    ids = EventIds(horizon_ms=10 * MIN)
    assert ids.fresh("share", [Ev("s1", T0_MS)]) == [Ev("s1", T0_MS)]
    # A block event hours ahead (its sparse topic read far ahead in a backlog) ...
    assert not ids.seen_before("block", "b1", T0_MS + 5 * 60 * MIN)
    # ... does not expire the share ids: the retry of s1 is still a repeat.
    assert ids.fresh("share", [Ev("s1", T0_MS), Ev("s2", T0_MS + 1)]) == [Ev("s2", T0_MS + 1)]
    assert ids.of("share").watermark_ms == T0_MS + 1
    # The same id under another type is another event.
    assert not ids.seen_before("miner", "s1", T0_MS)
    assert len(ids) == 4


def test_one_deduplicator_for_all_types_would_count_that_retry_twice() -> None:
    # Why EventIds exists: the same sequence through a single Deduplicator.
    d = Deduplicator(horizon_ms=10 * MIN)
    d.seen_before("s1", T0_MS)
    d.seen_before("b1", T0_MS + 5 * 60 * MIN)
    assert not d.seen_before("s1", T0_MS)


def _stream(rng: random.Random, n: int, start_ms: int) -> list[Ev]:
    out = []
    for i in range(n):
        ts = start_ms + i * 40 - rng.choice([0, 0, 0, 3_000, 9 * MIN, 11 * MIN, 40 * MIN])
        out.append(Ev(f"e{rng.randrange(6_000)}", ts))
    return out


def test_a_replayed_journal_rebuilds_the_same_state() -> None:
    rng = random.Random(11)
    before, after = _stream(rng, 30_000, T0_MS), _stream(rng, 10_000, T0_MS + 30_000 * 40)
    old = Deduplicator(horizon_ms=10 * MIN, hash_fn=stable_hash64, journal=True)
    journals = []
    i = 0
    while i < len(before):  # batches of any size, each journal taken after its batch
        n = rng.randrange(1, 900)
        old.fresh(before[i:i + n])
        journals.append(old.take_journal())
        i += n
    assert sum(len(j) for j in journals if j) == len(before)  # every event fed, repeats too
    new = Deduplicator(horizon_ms=10 * MIN, hash_fn=stable_hash64)
    for journal in journals:
        assert journal is not None
        new.replay(journal)
    assert (len(new), new.watermark_ms) == (len(old), old.watermark_ms)
    assert new.fresh(after) == old.fresh(after)  # the new owner answers exactly as the old one


def test_journal_is_off_by_default_and_typed_journals_leave_out_idle_types() -> None:
    assert Deduplicator().take_journal() is None
    ids = EventIds(horizon_ms=10 * MIN, hash_fn=stable_hash64, journal=True)
    ids.fresh("share", [Ev("a", T0_MS), Ev("a", T0_MS)])
    ids.seen_before("miner", "m", T0_MS + 5)
    journals = ids.take_journals()
    assert sorted(journals) == ["miner", "share"]
    assert list(journals["share"].hashes) == [stable_hash64("a")] * 2
    assert list(journals["share"].ts_ms) == [T0_MS, T0_MS]
    assert journals["miner"].watermark_ms == T0_MS + 5
    assert ids.take_journals() == {}  # taken: a new journal starts empty
