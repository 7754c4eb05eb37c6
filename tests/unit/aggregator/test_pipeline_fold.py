"""Folding a partition's records into its model and into the rows one transaction writes."""

from __future__ import annotations

import pytest

from services.aggregator.config import AggregatorSettings
from services.aggregator.consume.decoding import decode_records
from services.aggregator.consume.fold import fold_partition
from services.aggregator.consume.takeover import new_model
from services.aggregator.consume.writes import OffsetMove
from services.aggregator.domain.minutes import MinuteStats

from .pipeline_samples import NOW_MS, record, share_json
from .samples import HOUR, MIN, T0_MS, block_hash

pytestmark = pytest.mark.unit

SETTINGS = AggregatorSettings()


def _items(records, wall_ms=NOW_MS):  # type: ignore[no-untyped-def]
    """Records as the pipeline hands them over: one run per topic, with the decoded events."""
    by_topic: dict[str, list] = {}  # type: ignore[type-arg]
    for r in records:
        by_topic.setdefault(r.topic, []).append(r)
    return [(topic, rs, decode_records(rs, wall_ms=wall_ms).events) for topic, rs in by_topic.items()]


def _block(ts_ms: int, event_id: str, status: str = "candidate") -> dict:  # type: ignore[type-arg]
    return {"event_id": event_id, "type": "block", "ts": ts_ms, "node": "n1", "miner": "m1",
            "worker": "w1", "height": 7, "hash": block_hash(7), "network_difficulty": 50.0,
            "status": status}


def test_a_partitions_batch_becomes_deltas_offsets_blocks_and_liveness() -> None:
    model = new_model(SETTINGS)
    records = [
        record(share_json(T0_MS + 1_000, event_id="s1", difficulty=2.0), offset=10),
        record(share_json(T0_MS + 2_000, event_id="s1", difficulty=2.0), offset=11),  # retry
        record(b"garbage", offset=12),
        record(share_json(T0_MS + 61_000, event_id="s2", status="stale"), offset=13),
        record(_block(T0_MS + 1_000, "b1"), topic="pool.blocks", offset=4),
        record({"event_id": "c1", "type": "miner", "ts": T0_MS, "node": "n1", "miner": "m1",
                "worker": "w2", "state": "disconnected"}, topic="pool.miners", offset=0),
    ]
    expected = {"pool.shares": 10, "pool.blocks": 4, "pool.miners": 0}
    folded = fold_partition(model, 0, _items(records), expected)
    write = folded.write
    assert folded.shares is not None and folded.shares.duplicates == 1
    assert write.worker_deltas[("main", "m1", "w1", T0_MS)].accepted == 1
    assert write.worker_deltas[("main", "m1", "w1", T0_MS)].blocks_found == 1
    assert write.worker_deltas[("main", "m1", "w1", T0_MS + MIN)].stale == 1
    assert write.pool_deltas[("main", T0_MS)].difficulty_accepted == 2.0
    # The share result handed to the outputs keeps its own numbers (no block merged in).
    assert folded.shares.worker_deltas[("main", "m1", "w1", T0_MS)].blocks_found == 0
    assert write.offsets == [
        OffsetMove("pool.blocks", 0, 4, 5, NOW_MS),
        OffsetMove("pool.miners", 0, 0, 1, NOW_MS),
        OffsetMove("pool.shares", 0, 10, 14, NOW_MS),  # past the dead letter too
    ]
    assert write.claims == {(t, 0): o for t, o in expected.items()}
    assert list(write.blocks) == [block_hash(7)]
    assert write.watermark_ms == T0_MS + 61_000
    rows = {row.worker: row for row in write.workers}
    assert rows["w1"].last_share_ms == T0_MS + 61_000 and rows["w1"].connected is None
    assert rows["w2"].connected is False and rows["w2"].offline_after_ms == T0_MS  # gone at once
    assert folded.connections == {("main", "m1", "w2")}


def test_the_model_keeps_when_its_newest_share_arrived_and_no_other_topic_moves_it() -> None:
    model = new_model(SETTINGS)
    assert model.share_arrival_ms is None
    fold_partition(model, 0, _items([record(share_json(T0_MS, event_id="a"), timestamp=NOW_MS + 5),
                                     record(share_json(T0_MS + 1, event_id="b"), offset=1, timestamp=NOW_MS + 9)]),
                   {"pool.shares": 0})
    assert model.share_arrival_ms == NOW_MS + 9  # the broker's timestamp, not the event's
    fold_partition(model, 0, _items([record(_block(T0_MS, "b1"), topic="pool.blocks", timestamp=NOW_MS + 50),
                                     record(b"garbage", offset=2, timestamp=NOW_MS + 60)]),
                   {"pool.shares": 2, "pool.blocks": 0})
    assert model.share_arrival_ms == NOW_MS + 9  # a block, and a share record that is no share


def test_too_late_shares_are_counted_not_written() -> None:
    model = new_model(SETTINGS)
    records = [record(share_json(T0_MS, event_id="now"), offset=0),
               record(share_json(T0_MS - 25 * HOUR, event_id="old"), offset=1)]
    folded = fold_partition(model, 0, _items(records), {"pool.shares": 0})
    assert folded.shares is not None and folded.shares.too_late == 1
    assert list(folded.write.worker_deltas) == [("main", "m1", "w1", T0_MS)]


def test_restore_minutes_feeds_windows_and_liveness_not_dedup() -> None:
    model = new_model(SETTINGS)
    rows = {("main", "m1", "w1", T0_MS + i * MIN): MinuteStats(accepted=60, difficulty_units=60 * 2**80,
                                                               last_share_ms=T0_MS + i * MIN + 59_000)
            for i in range(30)}
    model.restore_minutes(rows)
    key = ("main", "m1", "w1")
    assert model.liveness.last_share_ms(key) == T0_MS + 29 * MIN + 59_000
    assert model.liveness.detection_bound_ms(key) == SETTINGS.liveness_floor_ms  # a fast worker
    assert model.workers.totals(key, T0_MS + 30 * MIN).accepted[3] == 60 * 30  # the 1h window
    assert len(model.dedup) == 0


def test_a_rebuilt_ledger_knows_its_blocks_and_a_later_status_counts_nothing_again() -> None:
    from services.aggregator.consume.ports import StoredPartition
    from services.aggregator.consume.takeover import rebuild_model
    from services.aggregator.consume.writes import WorkerStatusRow
    from services.aggregator.domain.blocks import BlockRecord

    row = BlockRecord("main", block_hash(7), 7, "m1", "w1", 50.0, None, "confirmed",
                      status_ts_ms=T0_MS + 5 * MIN, found_at_ms=T0_MS + 1_000)
    gone = WorkerStatusRow("main", "m1", "w2", None, T0_MS, False, T0_MS - MIN, {"n1": (T0_MS, False)}, 0)
    data = StoredPartition(workers=[gone], blocks=[row])
    model = rebuild_model(SETTINGS, data, watermark_ms=T0_MS + 10 * MIN)
    assert model.watermark_ms == T0_MS + 10 * MIN
    assert not model.liveness.is_online(("main", "m1", "w2"), T0_MS + 1)

    # A stale "candidate" (older than the stored confirmation) and a re-sent found event:
    # neither changes the status nor counts the block again.
    records = [record(_block(T0_MS + 2 * MIN, "b-late"), topic="pool.blocks", offset=0),
               record(_block(T0_MS + 1_000, "b-resent", "candidate"), topic="pool.blocks", offset=1)]
    folded = fold_partition(model, 0, _items(records), {"pool.blocks": 0})
    assert folded.write.worker_deltas == {} and folded.write.pool_deltas == {}
    assert folded.write.blocks[block_hash(7)].status == "confirmed"


def test_a_new_owner_replays_the_journaled_ids_and_counts_a_retry_once() -> None:
    from services.aggregator.consume.ports import StoredPartition
    from services.aggregator.consume.takeover import rebuild_model

    old = new_model(SETTINGS)
    first = fold_partition(old, 0, _items([record(share_json(T0_MS, event_id="seen"))]), {"pool.shares": 0})
    journals = first.write.id_journals
    assert sorted(journals) == ["share"] and len(journals["share"]) == 1
    assert old.dedup.take_journals() == {}  # each batch's journal goes out with that batch

    model = rebuild_model(SETTINGS, StoredPartition(journals={k: [j] for k, j in journals.items()}), T0_MS)
    again = fold_partition(model, 0, _items([record(share_json(T0_MS, event_id="seen"), offset=1)]),
                           {"pool.shares": 1})
    assert again.shares is not None and again.shares.duplicates == 1 and again.write.worker_deltas == {}
    assert len(again.write.id_journals["share"]) == 1  # the retry is journaled too (the same sequence)


def test_a_block_far_ahead_in_event_time_does_not_expire_share_ids() -> None:
    # A backlog: the sparse blocks partition is read hours ahead of the shares one.
    model = new_model(SETTINGS)
    first = [record(share_json(T0_MS, event_id="x"), offset=0)]
    fold_partition(model, 0, _items(first), {"pool.shares": 0})
    ahead = [record(_block(T0_MS + 5 * HOUR, "b-ahead"), topic="pool.blocks", offset=0,
                    timestamp=T0_MS + 6 * HOUR)]
    fold_partition(model, 0, _items(ahead, wall_ms=T0_MS + 6 * HOUR), {"pool.blocks": 0})
    retry = [record(share_json(T0_MS, event_id="x"), offset=1)]
    again = fold_partition(model, 0, _items(retry), {"pool.shares": 1})
    assert again.shares is not None and again.shares.duplicates == 1
