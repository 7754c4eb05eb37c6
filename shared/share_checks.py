"""The contract's share rules as plain checks, for the hot topic (pure: no I/O).

Why not the models alone: bulk pydantic validation was 55-60% of the
aggregator's CPU (a Python `ts` validator, model construction and Unicode
regexes per event). Here a share costs a few C-level string methods and one
tuple.

The models in shared/events.py stay the one authority. This path accepts
only what it can prove valid cheaply (ASCII identifiers, integer or plain
RFC 3339 times) and answers None for anything else, which then goes through
the models, which decide, and name the field and reason in the dead letter.
So this path may be stricter than the models but never looser, and what it
accepts carries the same values the model would: both are proved against
the contract's own tables and a mutation fuzz in
tests/unit/test_share_checks.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple

import orjson

from shared.events import MAX_FUTURE_MS, MIN_TS_MS, format_ts, rfc3339_to_ms

__all__ = ["ValidShare", "latest_ms_for", "share_value", "valid_share"]

_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII).fullmatch
_STATUSES: Final = frozenset(("accepted", "rejected", "stale"))
_INF: Final = float("inf")
# Pool, node and worker names repeat across millions of shares: a set lookup is a
# third of a regex match. Only valid names enter, and at most this many.
_KNOWN_NAMES_MAX: Final = 100_000
_known_names: set[str] = set()


class ValidShare(NamedTuple):
    """A share event that passed the contract's checks (the fields the aggregator reads)."""

    event_id: str
    ts_ms: int
    pool: str
    node: str
    miner: str
    worker: str
    difficulty: float
    status: str
    reject_reason: str | None
    actual_difficulty: float | None

    type = "share"


_new: Final = tuple.__new__


def _name(value: str) -> bool:
    if _NAME(value) is None:
        return False
    if len(_known_names) < _KNOWN_NAMES_MAX:
        _known_names.add(value)
    return True


def _positive(value: Any) -> float | None:
    # bool is an int subclass and the contract refuses it: hence type(), not isinstance().
    kind = type(value)
    if kind is float:
        return value if 0.0 < value < _INF else None
    if kind is int and value > 0:
        return float(value)  # orjson yields ints up to 2**64 - 1 only: always fits a double
    return None


def valid_share(obj: dict[str, Any], latest_ms: int) -> ValidShare | None:
    """The share in `obj` (a decoded JSON object) if it surely meets the contract
    with its event time at most `latest_ms`; None means "ask the models"."""
    if obj.get("type") != "share":
        return None
    event_id = obj.get("event_id")
    if type(event_id) is not str or not (0 < len(event_id) <= 64 and event_id.isascii()
                                          and event_id.isprintable()):
        return None
    ts = obj.get("ts")
    if type(ts) is str:
        try:
            ts = rfc3339_to_ms(ts)
        except ValueError:
            return None
    elif type(ts) is not int:
        return None
    if not MIN_TS_MS <= ts <= latest_ms:
        return None
    pool = obj.get("pool", "main")
    node = obj.get("node")
    worker = obj.get("worker", "default")
    known = _known_names
    if not (type(pool) is str and (pool in known or _name(pool))
            and type(node) is str and (node in known or _name(node))
            and type(worker) is str and (worker in known or _name(worker))):
        return None
    miner = obj.get("miner")
    # The contract's miner rule exactly (shared.events.MINER_PATTERN, '!'..'~'): printable
    # ASCII but space. Nothing non-ASCII passes, so no look-alike or invisible character.
    if type(miner) is not str or not (0 < len(miner) <= 128 and miner.isascii()
                                      and miner.isprintable() and " " not in miner):
        return None
    difficulty = _positive(obj.get("difficulty"))
    status = obj.get("status")
    if difficulty is None or type(status) is not str or status not in _STATUSES:
        return None
    reason = obj.get("reject_reason")
    if reason is not None and (type(reason) is not str or len(reason) > 128):
        return None
    actual = obj.get("actual_difficulty")
    if actual is not None and (actual := _positive(actual)) is None:
        return None
    # tuple.__new__ skips NamedTuple's Python-level __new__: 0.6 us instead of 1 us a share.
    return _new(ValidShare, (event_id, ts, pool, node, miner, worker, difficulty, status, reason, actual))


def latest_ms_for(now_ms: int) -> int:
    """The latest event time the models accept when their clock reads `now_ms`."""
    return now_ms + MAX_FUTURE_MS


_ONE_S: Final = timedelta(seconds=1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# "YYYY-MM-DDTHH:MM:SS" by whole epoch second: a batch's shares share a few seconds, and
# formatting a datetime was a sixth of the encoding. Cleared when full, like _known_names.
_SECOND_TEXT_MAX: Final = 10_000
_second_text: dict[int, str] = {}


def _ts_text(ts_ms: int) -> str:
    seconds, millis = divmod(ts_ms, 1000)
    head = _second_text.get(seconds)
    if head is None:
        # format_ts itself, so the text is the models' own: "...:SS.000Z" less ".000Z".
        head = format_ts(_EPOCH + _ONE_S * seconds)[:-5]
        if len(_second_text) >= _SECOND_TEXT_MAX:
            _second_text.clear()
        _second_text[seconds] = head
    return f"{head}.{millis:03d}Z"


def share_value(share: ValidShare) -> bytes:
    """The Kafka record value of a checked share: byte for byte `encode_event` of its model.

    Same keys in the model's field order, `ts` as RFC 3339 UTC with milliseconds,
    difficulties as floats, unset optionals left out (tests/unit/ingest/test_fast_batch.py).
    """
    out: dict[str, Any] = {
        "event_id": share.event_id, "type": "share", "ts": _ts_text(share.ts_ms),
        "pool": share.pool, "node": share.node, "miner": share.miner, "worker": share.worker,
        "difficulty": share.difficulty, "status": share.status,
    }
    if share.reject_reason is not None:
        out["reject_reason"] = share.reject_reason
    if share.actual_difficulty is not None:
        out["actual_difficulty"] = share.actual_difficulty
    return orjson.dumps(out)
