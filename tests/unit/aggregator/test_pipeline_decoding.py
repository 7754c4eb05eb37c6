"""Bulk decoding of Kafka records: bad records isolated, good ones kept, replay-stable."""

from __future__ import annotations

import pytest

from services.aggregator.consume.decoding import decode_records, record_now_ms

from .pipeline_samples import NOW_MS, record, share_json

pytestmark = pytest.mark.unit


def test_all_good_records_decode_in_one_pass() -> None:
    records = [record(share_json(NOW_MS - i, event_id=f"e{i}"), offset=i) for i in range(50)]
    decoded = decode_records(records, wall_ms=NOW_MS)
    assert decoded.letters == []
    assert [e.event_id for e in decoded.events] == [f"e{i}" for i in range(50)]  # type: ignore[union-attr]


def test_bad_records_become_dead_letters_and_the_good_ones_stay() -> None:
    good = share_json(NOW_MS, event_id="good")
    records = [
        record(good, offset=0),
        record(b"not json", offset=1),
        record({**good, "event_id": "bad-diff", "difficulty": "5"}, offset=2),  # contract: no coercion
        record(None, offset=3),
        record(b"[1, 2]", offset=4),
        record(b'{"event_id": "a"},{"event_id": "b"}', offset=5),  # would shift a joined array
        record({**good, "event_id": "good2"}, offset=6),
    ]
    decoded = decode_records(records, wall_ms=NOW_MS)
    assert [e.event_id if e else None for e in decoded.events] == [
        "good", None, None, None, None, None, "good2"]
    by_offset = {letter.record.offset: letter for letter in decoded.letters}
    assert sorted(by_offset) == [1, 2, 3, 4, 5]
    assert by_offset[1].reason == "undecodable"
    assert by_offset[2].reason == "invalid event"
    assert by_offset[2].errors[0]["field"] == "difficulty"
    assert by_offset[3].reason == "empty record"
    assert by_offset[4].errors == [{"field": "", "message": "Event should be a JSON object"}]


def test_the_future_is_judged_against_each_records_kafka_time() -> None:
    early, late = NOW_MS - 3_600_000, NOW_MS
    ts = early + 6 * 60_000  # 6 minutes after the first record was written, 54 before the second
    records = [record(share_json(ts, event_id="a"), timestamp=early),
               record(share_json(ts, event_id="b"), timestamp=late, offset=1)]
    for wall in (NOW_MS, NOW_MS + 10 * 3_600_000):  # a replay hours later decides the same
        decoded = decode_records(records, wall_ms=wall)
        assert [e.event_id if e else None for e in decoded.events] == [None, "b"]
        assert decoded.letters[0].errors[0]["field"] == "ts"


def test_record_now_is_capped_at_the_wall_clock() -> None:
    assert record_now_ms(record(b"{}", timestamp=NOW_MS + 10), NOW_MS) == NOW_MS
    assert record_now_ms(record(b"{}", timestamp=-1), NOW_MS) == NOW_MS
    assert record_now_ms(record(b"{}", timestamp=NOW_MS - 5), NOW_MS) == NOW_MS - 5
