"""Contract section 1 (events), rule by rule: each field's edges, valid and invalid."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from shared.events import (
    MINER_PATTERN,
    BlockEvent,
    FieldError,
    InvalidEvent,
    MinerEvent,
    ShareEvent,
    decode_event,
)
from tests.unit.event_cases import INVALID, KINDS, MINER_REFUSED, MINER_VALID, TS_INVALID, TS_VALID, VALID
from tests.unit.event_samples import DROP, NOW_MS, decode, errors_of, record

pytestmark = pytest.mark.unit

# --- valid values -------------------------------------------------------------


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


@pytest.mark.parametrize(("kind", "field", "value", "fragment"), [c[1:] for c in INVALID],
                         ids=[case_id(c) for c in INVALID])
def test_invalid_field_values(kind: str, field: str, value: Any, fragment: str) -> None:
    errors = errors_of(orjson.dumps(record(kind, **{field: value})))
    assert len(errors) == 1, errors
    (error,) = errors
    assert (error.index, error.field) == (None, field)
    assert fragment in error.message


# --- ts ------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "ms"), [c[1:] for c in TS_VALID], ids=[c[0] for c in TS_VALID])
def test_ts_valid_forms(value: Any, ms: int) -> None:
    event = decode(record("share", ts=value))
    assert event.ts_ms == ms
    assert event.ts.utcoffset() == timedelta(0)
    assert event.ts == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


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


# --- miner names in the published JSON Schemas ---------------------------------------

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
SCHEMA_KINDS = {"share.schema.json": ("share",), "block.schema.json": ("block",),
                "miner.schema.json": ("miner",), "event.schema.json": KINDS}


def _schema_accepts(doc: dict[str, Any], obj: dict[str, Any]) -> bool:
    """What a pool node's JSON Schema validator says about `obj`."""
    try:
        import jsonschema_rs  # installed with schemathesis; ECMA-262-style regexes
    except ImportError:  # no validator at hand: judge the miner by the schema's own rule
        rules = _miner_properties(doc)
        assert rules and all(rule == rules[0] for rule in rules)
        rule, miner = rules[0], obj["miner"]
        return (rule["minLength"] <= len(miner) <= rule["maxLength"]
                and re.fullmatch(rule["pattern"], miner) is not None)
    return bool(jsonschema_rs.validator_for(doc).is_valid(obj))


def _miner_properties(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node["properties"]["miner"]] if "miner" in node.get("properties", {}) else []
        return found + [p for v in node.values() for p in _miner_properties(v)]
    if isinstance(node, list):
        return [p for v in node for p in _miner_properties(v)]
    return []


SCHEMA_REFUSED = [*MINER_REFUSED, ("empty", ""), ("129-chars", "m" * 129)]


@pytest.mark.parametrize("name", sorted(SCHEMA_KINDS))
def test_json_schemas_refuse_the_miner_names_the_models_refuse(name: str) -> None:
    doc = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    for kind in SCHEMA_KINDS[name]:
        assert _schema_accepts(doc, record(kind)), (name, kind)  # the sample itself passes
        for label, miner in SCHEMA_REFUSED:
            assert not _schema_accepts(doc, record(kind, miner=miner)), (name, kind, label)
            with pytest.raises(InvalidEvent):
                decode(record(kind, miner=miner))
        for label, miner in MINER_VALID:
            assert _schema_accepts(doc, record(kind, miner=miner)), (name, kind, label)
            assert decode(record(kind, miner=miner)).miner == miner


def test_miner_pattern_means_the_same_to_python_re_and_to_the_model() -> None:
    # Python's `re` (OpenAPI example generators, anyone checking by hand) and
    # pydantic's Rust engine take exactly '!'..'~', code point by code point.
    python = re.compile(MINER_PATTERN)
    for code in range(0x110000):
        assert (python.fullmatch(chr(code)) is not None) == (0x21 <= code <= 0x7E), hex(code)
    for code in [*range(0x100), 0x430, 0x3BF, 0x200B, 0x200D, 0x202E, 0x2066, 0xFEFF, 0xFF41, 0x1F600]:
        try:
            decode(record("share", miner=f"a{chr(code)}b"))
        except InvalidEvent:
            accepted = False
        else:
            accepted = True
        assert accepted == (0x21 <= code <= 0x7E), hex(code)
