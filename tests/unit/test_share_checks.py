"""The hot path's share checks against the contract's models: never looser, same values.

`valid_share` may refuse what the models accept (the models then decide), but
whatever it accepts the model must accept too, with equal field values.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from services.aggregator.consume.decoding import decode_records
from shared.events import InvalidEvent, ShareEvent, decode_event
from shared.share_checks import ValidShare, valid_share
from tests.unit.aggregator.pipeline_samples import record as kafka_record
from tests.unit.event_cases import INVALID, MINER_REFUSED, TS_INVALID, TS_VALID, VALID
from tests.unit.event_samples import DROP, FIVE_MIN_MS, MIN_TS_MS, NOW_MS, SHARE, record

pytestmark = pytest.mark.unit

LATEST_MS = NOW_MS + FIVE_MIN_MS


def model_of(obj: dict[str, Any]) -> ShareEvent | None:
    try:
        event = decode_event(orjson.dumps(obj), now_ms=NOW_MS)
    except InvalidEvent:
        return None
    assert isinstance(event, ShareEvent)
    return event


def checked(obj: dict[str, Any]) -> ValidShare | None:
    """The fast answer, after asserting it never contradicts the model."""
    parsed = orjson.loads(orjson.dumps(obj))  # exactly what the consumer hands over
    fast = valid_share(parsed, LATEST_MS)
    if fast is not None:
        model = model_of(obj)
        assert model is not None, f"fast path accepted what the contract refuses: {obj!r}"
        for name in ValidShare._fields:
            got, want = getattr(fast, name), getattr(model, name)
            assert (got, type(got)) == (want, type(want)), name
        assert fast.type == model.type == "share"
    return fast


def test_the_sample_share_takes_the_fast_path() -> None:
    assert checked(SHARE) is not None
    assert checked(record("share", ts=NOW_MS, pool=DROP, worker=DROP)) is not None  # defaults


def _ascii_only(value: Any) -> bool:
    return not isinstance(value, str) or value.isascii()


SHARE_VALID = [c for c in VALID if c[1] == "share"]


@pytest.mark.parametrize(("field", "value"), [c[2:4] for c in SHARE_VALID],
                         ids=[f"{c[2]}-{c[0]}" for c in SHARE_VALID])
def test_valid_values_agree_and_ascii_ones_are_fast(field: str, value: Any) -> None:
    fast = checked(record("share", **{field: value}))
    if _ascii_only(value):
        assert fast is not None  # the common case must not fall back to the models
    # non-ASCII identifiers may go either way; `checked` proved agreement if accepted


@pytest.mark.parametrize(("value", "ms"), [c[1:] for c in TS_VALID], ids=[c[0] for c in TS_VALID])
def test_valid_timestamps_agree(value: Any, ms: int) -> None:
    fast = checked(record("share", ts=value))
    assert fast is not None
    assert fast.ts_ms == ms


SHARE_INVALID = [c for c in INVALID if c[1] == "share"]


@pytest.mark.parametrize(("field", "value"), [c[2:4] for c in SHARE_INVALID],
                         ids=[f"{c[2]}-{c[0]}" for c in SHARE_INVALID])
def test_invalid_values_are_refused(field: str, value: Any) -> None:
    assert checked(record("share", **{field: value})) is None


@pytest.mark.parametrize("value", [c[1] for c in TS_INVALID], ids=[c[0] for c in TS_INVALID])
def test_invalid_timestamps_are_refused(value: Any) -> None:
    assert checked(record("share", ts=value)) is None


IDENTIFIERS = ["event_id", "pool", "node", "worker", "miner"]
# Non-ASCII characters a person could take for ASCII ones, or not see at all.
LOOKALIKES = [(label, name) for label, name in MINER_REFUSED if not name.isascii()]


@pytest.mark.parametrize("field", [*IDENTIFIERS, "reject_reason"])
def test_every_ascii_character_is_judged_exactly_as_the_model_does(field: str) -> None:
    # ASCII is the fast path's domain: there it must neither refuse nor accept more.
    for code in range(128):
        obj = record("share", **{field: f"a{chr(code)}b"})
        assert (checked(obj) is not None) == (model_of(obj) is not None), (field, code)
    # Beyond ASCII: identifiers are left to the models (`checked` proves any other
    # acceptance agrees with them), and no look-alike miner name gets through either.
    for label, value in LOOKALIKES:
        obj = record("share", **{field: value})
        fast = checked(obj)
        if field in IDENTIFIERS:
            assert fast is None, (field, label)
        if field == "miner":
            assert model_of(obj) is None, label


@pytest.mark.parametrize("field", ["event_id", "node", "miner", "difficulty", "status", "type"])
def test_missing_required_fields_are_refused(field: str) -> None:
    assert checked(record("share", **{field: DROP})) is None


@pytest.mark.parametrize("kind", ["block", "miner"])
def test_other_event_types_are_left_to_the_models(kind: str) -> None:
    assert valid_share(record(kind), LATEST_MS) is None


_PALETTE: list[Any] = [
    DROP, None, True, False, 0, -1, 1, 7, 2**63, 2**64 - 1, 0.0, -0.0, 5e-324, 1e-300, 1.5, 1e308, -2.5,
    NOW_MS, NOW_MS + FIVE_MIN_MS, NOW_MS + FIVE_MIN_MS + 1, MIN_TS_MS, MIN_TS_MS - 1, float(NOW_MS),
    "", " ", "a", "a b", "a\tb", "a\nb", "a\x00", "a\x7f", "a\x85b", "a\u00a0b", "a\u2028b", "矿工", "⛏️",
    "x" * 64, "x" * 65, "x" * 128, "x" * 129, "AZaz09._-", "a/b", "a@b", "main\n", "~!@#$%^&*()",
    "accepted", "Accepted", "rejected", "stale", "confirmed", "share", "block",
    "2026-01-01T00:00:00Z", "2026-01-01T00:05:00.001Z", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z",
    "2008-12-31T23:59:59.999Z", "2026-01-01 00:00:00+02:00", [], {}, [1], {"a": 1},
]
_FIELDS = ["event_id", "type", "ts", "pool", "node", "miner", "worker", "difficulty", "status",
           "reject_reason", "actual_difficulty"]


def test_mutation_fuzz_never_accepts_what_the_models_refuse() -> None:
    rng = random.Random(20261128)
    fast_accepted = model_refused = 0
    for _ in range(20_000):
        changes = {f: rng.choice(_PALETTE) for f in _FIELDS if rng.random() < 0.12}
        obj = record("share", **changes)
        if checked(obj) is not None:
            fast_accepted += 1
        elif model_of(obj) is None:
            model_refused += 1
    # Both outcomes are exercised in bulk, so the implication above was really tested.
    assert fast_accepted > 2_000 and model_refused > 2_000, (fast_accepted, model_refused)


def test_decoding_mixes_fast_shares_with_model_decoded_events() -> None:
    fast = dict(SHARE, ts=NOW_MS, event_id="fast")
    unicode = dict(SHARE, ts=NOW_MS, event_id="slow-事件")  # non-ASCII: left to the models
    block = record("block", event_id="blk")
    bad = dict(SHARE, ts=NOW_MS, event_id="bad", difficulty=0)
    records = [kafka_record(orjson.dumps(o), offset=i) for i, o in enumerate([fast, unicode, block, bad])]
    decoded = decode_records(records, wall_ms=NOW_MS)
    kinds = [type(e).__name__ for e in decoded.events]
    assert kinds == ["ValidShare", "ShareEvent", "BlockEvent", "NoneType"]
    assert [e.event_id for e in decoded.events if e is not None] == ["fast", "slow-事件", "blk"]
    (letter,) = decoded.letters
    assert letter.record.offset == 3
    assert letter.errors[0]["field"] == "difficulty"
    assert "greater than 0" in letter.errors[0]["message"]
