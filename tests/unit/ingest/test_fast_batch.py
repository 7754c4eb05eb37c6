"""POST /v1/events' fast path against the models: the same records, byte for byte, or None.

`check_batch` may hand a body back to the models (None), but whatever it
turns into records must be exactly what `decode_batch` + the producer's
`send_events` would produce: same topics, keys and values, in body order.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from services.ingest.config import IngestSettings
from services.ingest.api.fast_batch import check_batch
from shared.events import TOPIC_BY_TYPE, BatchTooLarge, InvalidEvent, decode_batch, encode_event, record_key
from shared.kafka.producer import OutgoingRecord
from shared.kafka.topics import topic_name
from shared.share_checks import latest_ms_for, share_value, valid_share
from tests.unit.event_cases import TS_VALID, VALID
from tests.unit.event_samples import BLOCK, DROP, FIVE_MIN_MS, MIN_TS_MS, MINER, NOW_MS, SHARE, record

pytestmark = pytest.mark.unit

SETTINGS = IngestSettings(kafka_topic_prefix="t1.")


def model_records(raw: bytes, *, ndjson: bool = False, max_events: int = 10_000) -> list[OutgoingRecord] | None:
    """What the model path sends for `raw` (EventProducer.send_events' records), None if it refuses."""
    try:
        events = decode_batch(raw, ndjson=ndjson, max_events=max_events, now_ms=NOW_MS)
    except (InvalidEvent, BatchTooLarge):
        return None
    return [OutgoingRecord(topic_name(SETTINGS, TOPIC_BY_TYPE[e.type]), record_key(e), encode_event(e))
            for e in events]


def fast_records(raw: bytes, *, ndjson: bool = False, max_events: int = 10_000) -> list[OutgoingRecord] | None:
    """The fast answer, after asserting it never contradicts the models."""
    checked = check_batch(raw, ndjson=ndjson, max_events=max_events, now_ms=NOW_MS, settings=SETTINGS)
    if checked is None:
        return None
    want = model_records(raw, ndjson=ndjson, max_events=max_events)
    assert want is not None, f"fast path accepted a body the models refuse: {raw!r}"
    assert checked.records == want
    assert sum(checked.counts.values()) == len(want)
    return checked.records


def body(*events: dict[str, Any]) -> bytes:
    return orjson.dumps(list(events))


def test_the_contract_samples_encode_exactly_as_the_models_do() -> None:
    for share in (SHARE, record("share", ts=NOW_MS, pool=DROP, worker=DROP),
                  record("share", reject_reason="low difficulty", actual_difficulty=3, status="rejected")):
        fast = valid_share(orjson.loads(orjson.dumps(share)), latest_ms_for(NOW_MS))
        assert fast is not None
        assert share_value(fast) == (model_records(body(share)) or [])[0].value
    assert fast_records(body(SHARE, BLOCK, MINER, SHARE)) is not None


@pytest.mark.parametrize(("field", "value"), [c[2:4] for c in VALID if c[1] == "share"],
                         ids=[f"{c[2]}-{c[0]}" for c in VALID if c[1] == "share"])
def test_valid_values_give_the_models_bytes(field: str, value: Any) -> None:
    # Beside a plain share, so a value the checks leave to the models still takes the fast path.
    assert fast_records(body(SHARE, record("share", **{field: value}))) is not None


@pytest.mark.parametrize("value", [c[1] for c in TS_VALID], ids=[c[0] for c in TS_VALID])
def test_every_valid_timestamp_form_gives_the_models_text(value: Any) -> None:
    assert fast_records(body(record("share", ts=value))) is not None


def test_milliseconds_and_seconds_are_written_as_the_models_write_them() -> None:
    for ts in (MIN_TS_MS, MIN_TS_MS + 1, NOW_MS - 999, NOW_MS - 1000, NOW_MS + FIVE_MIN_MS, 1_700_000_000_010):
        assert fast_records(body(record("share", ts=ts))) is not None


def test_mixed_batches_keep_body_order_and_count_by_type() -> None:
    unicode = dict(SHARE, event_id="slow-事件")  # non-ASCII: left to the models
    raw = body(SHARE, BLOCK, unicode, MINER)
    records = fast_records(raw)
    assert records is not None
    assert [r.topic for r in records] == ["t1.pool.shares", "t1.pool.blocks", "t1.pool.shares", "t1.pool.miners"]
    checked = check_batch(raw, ndjson=False, max_events=100, now_ms=NOW_MS, settings=SETTINGS)
    assert checked is not None
    assert checked.counts == {"share": 2, "block": 1, "miner": 1}


@pytest.mark.parametrize("raw", [
    b"", b"   ", b"[]", b"{}", b"[1]", b"not json", b'[{"type": "share"}]', b"[NaN]",
    body(SHARE, dict(SHARE, difficulty=0)),  # one bad event refuses the batch
    body(SHARE, record("block", hash="zz")),
    body(dict(SHARE, ts=NOW_MS + FIVE_MIN_MS + 1)),
], ids=["empty", "blank", "empty-array", "object", "number", "not-json", "share-without-fields", "nan",
        "one-bad-share", "bad-block", "future"])
def test_bodies_the_models_refuse_go_back_to_them(raw: bytes) -> None:
    assert check_batch(raw, ndjson=False, max_events=100, now_ms=NOW_MS, settings=SETTINGS) is None


def test_limits_are_left_to_the_models() -> None:
    raw = body(SHARE, SHARE, SHARE)
    assert check_batch(raw, ndjson=False, max_events=2, now_ms=NOW_MS, settings=SETTINGS) is None
    lines = b"\n".join(orjson.dumps(SHARE) for _ in range(3))
    assert check_batch(lines, ndjson=True, max_events=2, now_ms=NOW_MS, settings=SETTINGS) is None


def test_ndjson_gives_the_models_records() -> None:
    lines = b"\n\n".join(orjson.dumps(e) for e in (SHARE, BLOCK, MINER)) + b"\r\n"
    assert fast_records(lines, ndjson=True) is not None
    assert check_batch(orjson.dumps(SHARE) + b"\n{", ndjson=True, max_events=10, now_ms=NOW_MS,
                       settings=SETTINGS) is None


_PALETTE: list[Any] = [
    DROP, None, True, False, 0, -1, 1, 7, 2**53 + 1, 2**63, 2**64 - 1, 0.0, -0.0, 5e-324, 1e-300, 1.5, 1e308,
    0.1, 1 / 3, 65536.0, NOW_MS, NOW_MS + FIVE_MIN_MS, NOW_MS + FIVE_MIN_MS + 1, MIN_TS_MS, MIN_TS_MS - 1,
    NOW_MS - 1, MIN_TS_MS + 999, "", " ", "a", "a b", "a\tb", "a\x00", "a\u2028b", "矿工", "⛏️", 'q"uote',
    "back\\slash", "x" * 64, "x" * 65, "x" * 128, "x" * 129, "AZaz09._-", "~!@#$%^&*()",
    "accepted", "rejected", "stale", "share", "block",
    "2026-01-01T00:00:00Z", "2025-12-31T23:59:59.999999Z", "2026-01-01T00:05:00.001Z", "2026-01-01T00:00:00",
    "2008-12-31T23:59:59.999Z", "2026-01-01 00:00:00+02:00", "2025-12-31t20:00:00.5-04:00", [], {}, [1],
]
_FIELDS = ["event_id", "type", "ts", "pool", "node", "miner", "worker", "difficulty", "status",
           "reject_reason", "actual_difficulty", "extra"]


def test_mutation_fuzz_gives_the_models_bytes_or_hands_back() -> None:
    rng = random.Random(20261202)
    fast_batches = refused = 0
    for _ in range(3_000):
        events = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(("share", "share", "share", "block", "miner"))
            changes = {f: rng.choice(_PALETTE) for f in _FIELDS if rng.random() < 0.1}
            events.append(record(kind, **changes) if kind == "share" else record(kind))
        raw = body(*events)
        if fast_records(raw) is not None:
            fast_batches += 1
        elif model_records(raw) is None:
            refused += 1
    # Both outcomes are exercised in bulk, so the equality above was really tested.
    assert fast_batches > 500 and refused > 500, (fast_batches, refused)


def test_a_batch_without_a_checked_share_is_left_to_the_models() -> None:
    # Valid, but nothing for the checks to spare: decode_batch alone is the cheaper way.
    raw = body(BLOCK, MINER, dict(SHARE, event_id="slow-事件"))
    assert model_records(raw) is not None
    assert check_batch(raw, ndjson=False, max_events=100, now_ms=NOW_MS, settings=SETTINGS) is None
