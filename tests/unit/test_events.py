"""Contract section 1 (events), rule by rule: each field's edges, valid and invalid."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from shared.events import (
    BlockEvent,
    FieldError,
    InvalidEvent,
    MinerEvent,
    ShareEvent,
    decode_event,
)

pytestmark = pytest.mark.unit

from tests.unit.event_samples import (
    DROP, FIVE_MIN_MS, HASH, MIN_TS_MS, NOW_MS, decode, errors_of, record,
)

pytestmark = pytest.mark.unit

# --- valid values -------------------------------------------------------------

VALID = [
    # (id, kind, field, value, expected attribute value or ... for "same as sent")
    ("1-char", "share", "event_id", "a", ...),
    ("64-chars", "share", "event_id", "e" * 64, ...),
    ("inner-space", "share", "event_id", "retry 2", ...),
    ("punctuation", "share", "event_id", "n1:2026/01/01#7", ...),
    ("unicode-printable", "share", "event_id", "事件-1", ...),
    ("64-chars", "share", "pool", "p" * 64, ...),
    ("all-allowed-chars", "share", "pool", "AZaz09._-", ...),
    ("1-char", "share", "node", "n", ...),
    ("64-chars", "block", "node", "n" * 64, ...),
    ("64-chars", "miner", "worker", "w" * 64, ...),
    ("1-char", "share", "miner", "m", ...),
    ("128-chars", "share", "miner", "m" * 128, ...),
    ("128-unicode-chars", "share", "miner", "矿" * 128, ...),
    ("unicode", "block", "miner", "矿工.bc1q-ü", ...),
    ("emoji", "miner", "miner", "⛏️miner", ...),
    ("punctuation", "share", "miner", "user@example.com/x", ...),
    ("integer", "share", "difficulty", 1, 1.0),
    ("tiny", "share", "difficulty", 1e-300, ...),
    ("huge", "share", "difficulty", 1e300, ...),
    ("u64-max-int", "share", "difficulty", 2**64 - 1, float(2**64 - 1)),
    ("accepted", "share", "status", "accepted", ...),
    ("rejected", "share", "status", "rejected", ...),
    ("stale", "share", "status", "stale", ...),
    ("128-chars", "share", "reject_reason", "r" * 128, ...),
    ("empty", "share", "reject_reason", "", ...),
    ("null", "share", "reject_reason", None, ...),
    ("float", "share", "actual_difficulty", 1.5e9, ...),
    ("int", "share", "actual_difficulty", 7, 7.0),
    ("zero", "block", "height", 0, ...),
    ("large", "block", "height", 2**40, ...),
    ("lowercase", "block", "hash", "ab" * 32, ...),
    ("uppercase-normalised", "block", "hash", "AB" * 32, "ab" * 32),
    ("mixed-case-normalised", "block", "hash", "aB" * 32, "ab" * 32),
    ("int", "block", "network_difficulty", 5, 5.0),
    ("zero", "block", "reward", 0, 0.0),
    ("float", "block", "reward", 6.25, ...),
    ("null", "block", "reward", None, ...),
    ("candidate", "block", "status", "candidate", ...),
    ("confirmed", "block", "status", "confirmed", ...),
    ("orphaned", "block", "status", "orphaned", ...),
    ("connected", "miner", "state", "connected", ...),
    ("disconnected", "miner", "state", "disconnected", ...),
    ("int", "miner", "difficulty", 1024, 1024.0),
    ("256-chars", "miner", "user_agent", "u" * 256, ...),
    ("null", "miner", "user_agent", None, ...),
]


def case_id(case: tuple[Any, ...]) -> str:
    label, kind, field = case[:3]
    return f"{kind}.{field}-{label}"


@pytest.mark.parametrize(("kind", "field", "value", "expected"), [c[1:] for c in VALID],
                         ids=[case_id(c) for c in VALID])
def test_valid_field_values(kind: str, field: str, value: Any, expected: Any) -> None:
    event = decode(record(kind, **{field: value}))
    got = getattr(event, field)
    assert got == (value if expected is ... else expected)
    assert type(got) is type(value if expected is ... else expected)


# --- invalid values -------------------------------------------------------------

INVALID = [
    # (label, kind, field, value, fragment of the message on that field)
    # (missing required fields: test_missing_required_field_named)
    ("empty", "share", "event_id", "", "at least 1 character"),
    ("65-chars", "share", "event_id", "e" * 65, "at most 64"),
    ("tab", "share", "event_id", "a\tb", "printable"),
    ("newline", "share", "event_id", "a\nb", "printable"),
    ("nul", "share", "event_id", "a\x00b", "printable"),
    ("del", "share", "event_id", "a\x7fb", "printable"),
    ("nbsp", "share", "event_id", "a\u00a0b", "printable"),
    ("bidi-control", "share", "event_id", "a\u202eb", "printable"),
    ("int", "share", "event_id", 5, "valid string"),
    ("null", "share", "event_id", None, "valid string"),
    ("unknown", "share", "type", "foo", "unknown event type 'foo'; expected share, block or"),
    ("wrong-case", "share", "type", "Share", "unknown event type 'Share'"),
    ("int", "share", "type", 5, "should be a string"),
    ("null", "share", "type", None, "should be a string"),
    ("missing", "share", "type", DROP, "Field required; expected share, block or miner"),
    ("empty", "share", "pool", "", "at least 1 character"),
    ("65-chars", "share", "pool", "p" * 65, "at most 64"),
    ("space", "share", "pool", "my pool", "letters, digits"),
    ("slash", "share", "pool", "a/b", "letters, digits"),
    ("unicode", "share", "pool", "pööl", "letters, digits"),
    ("trailing-newline", "share", "pool", "main\n", "letters, digits"),
    ("int", "share", "pool", 1, "valid string"),
    ("empty", "block", "node", "", "at least 1 character"),
    ("65-chars", "block", "node", "n" * 65, "at most 64"),
    ("colon", "block", "node", "node:1", "letters, digits"),
    ("empty", "share", "worker", "", "at least 1 character"),
    ("65-chars", "block", "worker", "w" * 65, "at most 64"),
    ("space", "miner", "worker", "rig 1", "letters, digits"),
    ("empty", "share", "miner", "", "at least 1 character"),
    ("129-chars", "share", "miner", "m" * 129, "at most 128"),
    ("space", "share", "miner", "a b", "whitespace or control"),
    ("tab", "share", "miner", "a\tb", "whitespace or control"),
    ("newline", "block", "miner", "a\n", "whitespace or control"),
    ("ideographic-space", "miner", "miner", "a\u3000b", "whitespace or control"),
    ("nbsp", "share", "miner", "a\u00a0b", "whitespace or control"),
    ("line-separator", "share", "miner", "a\u2028b", "whitespace or control"),
    ("nul", "share", "miner", "a\x00b", "whitespace or control"),
    ("del", "share", "miner", "a\x7fb", "whitespace or control"),
    ("c1-control", "share", "miner", "a\x85b", "whitespace or control"),
    ("int", "share", "miner", 42, "valid string"),
    ("zero", "share", "difficulty", 0, "Input should be greater than 0"),
    ("negative", "share", "difficulty", -1.5, "greater than 0"),
    ("string", "share", "difficulty", "5", "valid number"),
    ("bool", "share", "difficulty", True, "valid number"),
    ("null", "share", "difficulty", None, "valid number"),
    ("array", "share", "difficulty", [5], "valid number"),
    ("unknown", "share", "status", "ok", "'accepted', 'rejected' or 'stale'"),
    ("wrong-case", "share", "status", "Accepted", "'accepted'"),
    ("block-value-on-share", "share", "status", "confirmed", "'accepted'"),
    ("129-chars", "share", "reject_reason", "r" * 129, "at most 128"),
    ("int", "share", "reject_reason", 3, "valid string"),
    ("zero", "share", "actual_difficulty", 0, "greater than 0"),
    ("string", "share", "actual_difficulty", "1", "valid number"),
    ("bool", "share", "actual_difficulty", False, "valid number"),
    ("negative", "block", "height", -1, "greater than or equal to 0"),
    ("fraction", "block", "height", 1.5, "valid integer"),
    ("float-whole", "block", "height", 7.0, "valid integer"),
    ("string", "block", "height", "7", "valid integer"),
    ("bool", "block", "height", True, "valid integer"),
    ("63-chars", "block", "hash", HASH[:63], "at least 64"),
    ("65-chars", "block", "hash", HASH + "0", "at most 64"),
    ("empty", "block", "hash", "", "at least 64"),
    ("non-hex", "block", "hash", "g" * 64, "hexadecimal"),
    ("0x-prefix", "block", "hash", "0x" + HASH[2:], "hexadecimal"),
    ("int", "block", "hash", 12, "valid string"),
    ("zero", "block", "network_difficulty", 0, "greater than 0"),
    ("negative", "block", "network_difficulty", -2, "greater than 0"),
    ("string", "block", "network_difficulty", "1e13", "valid number"),
    ("bool", "block", "network_difficulty", True, "valid number"),
    ("negative", "block", "reward", -0.01, "greater than or equal to 0"),
    ("string", "block", "reward", "3.125", "valid number"),
    ("bool", "block", "reward", True, "valid number"),
    ("share-value", "block", "status", "accepted", "'candidate', 'confirmed' or 'orphaned'"),
    ("unknown", "miner", "state", "online", "'connected' or 'disconnected'"),
    ("zero", "miner", "difficulty", 0, "greater than 0"),
    ("string", "miner", "difficulty", "8", "valid number"),
    ("257-chars", "miner", "user_agent", "u" * 257, "at most 256"),
    ("int", "miner", "user_agent", 1, "valid string"),
]


@pytest.mark.parametrize(("kind", "field", "value", "fragment"), [c[1:] for c in INVALID],
                         ids=[case_id(c) for c in INVALID])
def test_invalid_field_values(kind: str, field: str, value: Any, fragment: str) -> None:
    errors = errors_of(orjson.dumps(record(kind, **{field: value})))
    assert len(errors) == 1, errors
    (error,) = errors
    assert (error.index, error.field) == (None, field)
    assert fragment in error.message


# --- ts ------------------------------------------------------------------------

TS_VALID = [
    ("rfc3339-z", "2026-01-01T00:00:00Z", NOW_MS),
    ("rfc3339-lowercase-t-z", "2026-01-01t00:00:00z", NOW_MS),
    ("rfc3339-space-separator", "2026-01-01 00:00:00Z", NOW_MS),
    ("rfc3339-millis", "2025-12-31T23:59:59.123Z", NOW_MS - 877),
    ("rfc3339-micros-truncated-to-ms", "2025-12-31T23:59:59.123999Z", NOW_MS - 877),
    ("rfc3339-nanos-truncated-to-ms", "2025-12-31T23:59:59.123999999Z", NOW_MS - 877),
    ("rfc3339-plus-offset", "2026-01-01T02:00:00+02:00", NOW_MS),
    ("rfc3339-minus-offset", "2025-12-31T18:30:00-05:30", NOW_MS),
    ("rfc3339-zero-offset", "2026-01-01T00:00:00+00:00", NOW_MS),
    ("epoch-ms", NOW_MS - 1, NOW_MS - 1),
    ("future-exactly-5-min-ms", NOW_MS + FIVE_MIN_MS, NOW_MS + FIVE_MIN_MS),
    ("future-exactly-5-min-string", "2026-01-01T00:05:00Z", NOW_MS + FIVE_MIN_MS),
    ("lower-bound-exact-ms", MIN_TS_MS, MIN_TS_MS),
    ("lower-bound-exact-string", "2009-01-01T00:00:00Z", MIN_TS_MS),
]


@pytest.mark.parametrize(("value", "ms"), [c[1:] for c in TS_VALID], ids=[c[0] for c in TS_VALID])
def test_ts_valid_forms(value: Any, ms: int) -> None:
    event = decode(record("share", ts=value))
    assert event.ts_ms == ms
    assert event.ts.utcoffset() == timedelta(0)
    assert event.ts == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


TS_INVALID = [
    ("naive", "2026-01-01T00:00:00", "UTC offset"),
    ("naive-millis", "2026-01-01T00:00:00.500", "UTC offset"),
    ("date-only", "2026-01-01", "RFC 3339"),
    ("iso-basic-format", "20260101T000000Z", "RFC 3339"),
    ("no-seconds", "2026-01-01T00:00Z", "RFC 3339"),
    ("offset-without-colon", "2026-01-01T00:00:00+0200", "RFC 3339"),
    ("month-13", "2026-13-01T00:00:00Z", "RFC 3339"),
    ("leap-second", "2025-12-31T23:59:60Z", "RFC 3339"),
    ("empty-string", "", "RFC 3339"),
    ("digits-string", str(NOW_MS), "RFC 3339"),
    ("float-ms", float(NOW_MS), "integer epoch milliseconds"),
    ("bool", True, "integer epoch milliseconds"),
    ("null", None, "integer epoch milliseconds"),
    ("object", {"ms": NOW_MS}, "integer epoch milliseconds"),
    ("future-5-min-plus-1-ms", NOW_MS + FIVE_MIN_MS + 1, "more than 5 minutes in the future"),
    ("future-string", "2026-01-01T00:05:00.001Z", "more than 5 minutes in the future"),
    ("future-via-offset", "2026-01-01T00:05:01-00:00", "more than 5 minutes in the future"),
    ("far-future-u64", 2**64 - 1, "more than 5 minutes in the future"),
    ("far-future-year-9999", "9999-12-31T23:59:59Z", "more than 5 minutes in the future"),
    ("before-2009-ms", MIN_TS_MS - 1, "before 2009"),
    ("before-2009-string", "2008-12-31T23:59:59.999Z", "before 2009"),
    ("epoch-seconds-unit-mistake", NOW_MS // 1000, "before 2009"),
    ("zero", 0, "before 2009"),
    ("negative", -1, "before 2009"),
]


@pytest.mark.parametrize(("value", "fragment"), [c[1:] for c in TS_INVALID],
                         ids=[c[0] for c in TS_INVALID])
def test_ts_invalid_forms(value: Any, fragment: str) -> None:
    (error,) = errors_of(orjson.dumps(record("share", ts=value)))
    assert error.field == "ts"
    assert fragment in error.message


def test_ts_now_defaults_to_wall_clock() -> None:
    now = time.time_ns() // 1_000_000
    assert decode_event(orjson.dumps(record("share", ts=now))).ts_ms == now
    with pytest.raises(InvalidEvent):
        decode_event(orjson.dumps(record("share", ts=now + 10 * 60_000)))


def test_python_callers_may_pass_aware_datetimes_not_naive_ones() -> None:
    aware = datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    fields = record("share", ts=aware)
    context = {"now_ms": NOW_MS}
    event = ShareEvent.model_validate(fields, context=context)
    assert event.ts_ms == NOW_MS and event.ts.tzinfo == UTC
    with pytest.raises(ValidationError):
        ShareEvent.model_validate(record("share", ts=datetime(2026, 1, 1)), context=context)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")],
                         ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("field", ["difficulty", "actual_difficulty"])
def test_non_finite_numbers_rejected_by_the_model(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as info:
        ShareEvent.model_validate(record("share", **{field: value}), context={"now_ms": NOW_MS})
    assert info.value.errors()[0]["type"] == "finite_number"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
def test_non_finite_json_numbers_rejected_as_bad_json(literal: bytes) -> None:
    raw = orjson.dumps(record("share", difficulty=1))
    raw = raw.replace(b'"difficulty":1', b'"difficulty":' + literal)
    assert literal in raw
    (error,) = errors_of(raw)
    assert (error.index, error.field) == (None, "")
    assert "not valid JSON" in error.message


@pytest.mark.parametrize(
    ("kind", "field", "literal"),
    [("block", "height", b"18446744073709551616"), ("share", "ts", b"100000000000000000000")],
    ids=["height-beyond-u64", "ts-beyond-u64"],
)
def test_integers_beyond_u64_rejected(kind: str, field: str, literal: bytes) -> None:
    # orjson reads integers wider than 64 bits as floats, which strict ints refuse.
    doc = record(kind, **{field: 1234567})
    raw = orjson.dumps(doc).replace(f'"{field}":1234567'.encode(), f'"{field}":'.encode() + literal)
    assert literal in raw
    (error,) = errors_of(raw)
    assert error.field == field


# --- whole records -----------------------------------------------------------------


@pytest.mark.parametrize(("kind", "model"),
                         [("share", ShareEvent), ("block", BlockEvent), ("miner", MinerEvent)])
def test_each_type_decodes_to_its_model_with_defaults(kind: str, model: type) -> None:
    event = decode(record(kind, pool=DROP, worker=DROP))
    assert type(event) is model
    assert (event.pool, event.worker) == ("main", "default")


def test_optional_fields_default_to_none() -> None:
    share = decode(record("share"))
    miner = decode(record("miner"))
    block = decode(record("block", reward=DROP))
    assert (share.reject_reason, share.actual_difficulty) == (None, None)
    assert (miner.difficulty, miner.user_agent) == (None, None)
    assert block.reward is None


def test_unknown_fields_ignored() -> None:
    event = decode(record("share", colour="blue", extra={"nested": [1]}, ts_ms=1))
    assert not hasattr(event, "colour") and "extra" not in event.model_dump()
    assert event.ts_ms == NOW_MS  # a sent "ts_ms" never overrides the one derived from ts


REQUIRED = {
    "share": ["event_id", "ts", "node", "miner", "difficulty", "status"],
    "block": ["event_id", "ts", "node", "miner", "height", "hash", "network_difficulty", "status"],
    "miner": ["event_id", "ts", "node", "miner", "state"],
}


@pytest.mark.parametrize(("kind", "field"), [(k, f) for k, fs in REQUIRED.items() for f in fs],
                         ids=[f"{k}-{f}" for k, fs in REQUIRED.items() for f in fs])
def test_missing_required_field_named(kind: str, field: str) -> None:
    (error,) = errors_of(orjson.dumps(record(kind, **{field: DROP})))
    assert (error.field, error.message) == (field, "Field required")


def test_every_bad_field_of_one_record_reported() -> None:
    errors = errors_of(orjson.dumps(record("share", difficulty=0, pool="a b", status="x")))
    assert {e.field for e in errors} == {"difficulty", "pool", "status"}
    assert all(e.index is None for e in errors)


def test_events_are_frozen() -> None:
    event = decode(record("share"))
    with pytest.raises(ValidationError):
        event.difficulty = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b'{"a":1} {"b":2}', "not valid JSON"),
        (b"[]", "JSON object"),
        (b'"share"', "JSON object"),
        (b"42", "JSON object"),
        (b"null", "JSON object"),
    ],
    ids=["garbage", "empty", "blank", "bad-utf8", "two-objects", "array", "string", "number",
         "null"],
)
def test_single_record_not_an_event_object(raw: bytes, fragment: str) -> None:
    (error,) = errors_of(raw)
    assert (error.index, error.field) == (None, "")
    assert fragment in error.message


def test_invalid_event_carries_errors_and_is_an_exception() -> None:
    with pytest.raises(InvalidEvent) as info:
        decode(record("share", difficulty=-1))
    assert info.value.errors == [FieldError(None, "difficulty", "Input should be greater than 0")]
    assert isinstance(info.value, Exception)
