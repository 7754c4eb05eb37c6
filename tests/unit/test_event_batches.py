"""Contract section 1 (events): batches (JSON array, NDJSON), limits, encoding, topics and keys."""

from __future__ import annotations

import orjson
import pytest

from shared.events import (
    TOPIC_BY_TYPE,
    BatchTooLarge,
    BlockEvent,
    InvalidEvent,
    MinerEvent,
    ShareEvent,
    decode_batch,
    decode_event,
    encode_event,
    record_key,
)

pytestmark = pytest.mark.unit

from tests.unit.event_samples import (
    DROP,
    NOW_MS,
    decode,
    errors_of,
    record,
)

pytestmark = pytest.mark.unit

# --- batches ---------------------------------------------------------------------------


def test_batch_array_decodes_in_order() -> None:
    items = [record("share"), record("block"), record("miner")]
    events = decode_batch(orjson.dumps(items), now_ms=NOW_MS)
    assert [type(e) for e in events] == [ShareEvent, BlockEvent, MinerEvent]


def test_batch_reports_every_bad_item_with_index_and_field() -> None:
    items = [
        record("share"),
        record("share", difficulty="5"),
        record("block"),
        record("block", height=-1, hash="xyz"),
        record("miner", type="foo"),
        7,
        record("miner", state=DROP),
    ]
    errors = errors_of(orjson.dumps(items), batch=True)
    assert [(e.index, e.field) for e in errors] == [
        (1, "difficulty"),
        (3, "height"),
        (3, "hash"),
        (4, "type"),
        (5, ""),
        (6, "state"),
    ]
    assert errors[3].message == "unknown event type 'foo'; expected share, block or miner"


def test_batch_field_has_no_union_tag() -> None:
    items = [record(kind, event_id="") for kind in ("share", "block", "miner")]
    errors = errors_of(orjson.dumps(items), batch=True)
    assert [(e.index, e.field) for e in errors] == [(i, "event_id") for i in range(3)]


def test_ndjson_batch() -> None:
    lines = [orjson.dumps(record("share")), b"", orjson.dumps(record("miner")) + b"\r", b"   "]
    events = decode_batch(b"\n".join(lines) + b"\n", ndjson=True, now_ms=NOW_MS)
    assert [type(e) for e in events] == [ShareEvent, MinerEvent]


def test_ndjson_bad_line_and_bad_field_both_reported() -> None:
    lines = [
        orjson.dumps(record("share")),
        b"",  # blank lines do not count as events
        b'{"type": "share", oops}',
        orjson.dumps(record("share", status="lost")),
        b"[1, 2]",
    ]
    errors = errors_of(b"\n".join(lines), batch=True, ndjson=True)
    assert [(e.index, e.field) for e in errors] == [(1, ""), (2, "status"), (3, "")]
    assert "not valid JSON" in errors[0].message
    assert errors[2].message == "Event should be a JSON object"


def test_ndjson_two_objects_on_one_line_is_a_bad_line() -> None:
    line = orjson.dumps(record("share")) + b" " + orjson.dumps(record("share"))
    (error,) = errors_of(line, batch=True, ndjson=True)
    assert (error.index, error.field) == (0, "")


@pytest.mark.parametrize(
    ("raw", "ndjson", "fragment"),
    [
        (b"[]", False, "empty"),
        (b"", False, "empty"),
        (b"", True, "empty"),
        (b"\n\n  \n", True, "empty"),
        (b"{oops", False, "not valid JSON"),
        (b'{"type": "share"}', False, "JSON array"),
        (b'"x"', False, "JSON array"),
        (b"null", False, "JSON array"),
    ],
    ids=["empty-array", "empty-body", "empty-ndjson", "blank-ndjson", "not-json", "object",
         "string", "null"],
)
def test_batch_body_errors(raw: bytes, ndjson: bool, fragment: str) -> None:
    (error,) = errors_of(raw, batch=True, ndjson=ndjson)
    assert (error.index, error.field) == (None, "")
    assert fragment in error.message


@pytest.mark.parametrize("ndjson", [False, True], ids=["array", "ndjson"])
def test_batch_limit(ndjson: bool) -> None:
    def body(n: int) -> bytes:
        items = [record("share", event_id=f"e{i}") for i in range(n)]
        return b"\n".join(map(orjson.dumps, items)) if ndjson else orjson.dumps(items)

    assert len(decode_batch(body(3), ndjson=ndjson, max_events=3, now_ms=NOW_MS)) == 3
    with pytest.raises(BatchTooLarge) as info:
        decode_batch(body(4), ndjson=ndjson, max_events=3, now_ms=NOW_MS)
    assert (info.value.count, info.value.limit) == (4, 3)
    assert not isinstance(info.value, InvalidEvent)  # 413, not 422


def test_batch_limit_checked_before_validation() -> None:
    # Over the limit wins even when the items are invalid: no point validating them.
    with pytest.raises(BatchTooLarge):
        decode_batch(orjson.dumps([{}] * 11), max_events=10, now_ms=NOW_MS)


# --- encoding, topics, keys -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["share", "block", "miner"])
def test_round_trip(kind: str) -> None:
    # A miner with the characters JSON must escape ('"' and '\\'), and an event id beyond ASCII.
    event = decode(record(kind, miner='u.ser@x/"q"\\~', event_id="事件-ü", ts="2026-01-01T01:00:00.25+01:00"))
    raw = encode_event(event)
    again = decode_event(raw, now_ms=NOW_MS)
    assert again == event and again.ts_ms == event.ts_ms
    assert encode_event(again) == raw
    assert orjson.loads(raw)["ts"] == "2026-01-01T00:00:00.250Z"


def test_encode_keeps_required_and_defaults_drops_unset_optionals() -> None:
    body = orjson.loads(encode_event(decode(record("share", pool=DROP, worker=DROP))))
    assert body == {
        "event_id": "n1-000001",
        "type": "share",
        "ts": "2026-01-01T00:00:00.000Z",
        "pool": "main",
        "node": "node-1",
        "miner": "bc1qminer",
        "worker": "default",
        "difficulty": 65536.0,
        "status": "accepted",
    }


def test_topics_and_record_key() -> None:
    assert TOPIC_BY_TYPE == {"share": "pool.shares", "block": "pool.blocks", "miner": "pool.miners"}
    event = decode(record("block", miner="user.worker-1~"))
    assert TOPIC_BY_TYPE[event.type] == "pool.blocks"
    assert record_key(event) == b"user.worker-1~"
