"""Records of the live feed, checked: snapshot records (docs/aggregator.md "Snapshot topic")
and alert records (docs/alerter.md "`chimera.alerts`").

Whatever arrives on those topics is hostile until checked here: a record that is
not what the documents describe raises `MalformedRecord` and is skipped by the
hub (counted), never forwarded to a browser. What is forwarded is re-encoded
from the parsed value, so it is one line of JSON whatever the producer wrote.
No I/O: pure functions and value types.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from enum import StrEnum
from typing import Any, Final

from shared.events import MINER_PATTERN, NAME_PATTERN

__all__ = ["WINDOWS", "Kind", "LiveRecord", "MalformedRecord", "MinerSummary", "parse_alert", "parse_snapshot"]

WINDOWS: Final = ("1m", "5m", "15m", "1h", "24h")
# A snapshot record is well under 2 KiB, an alert a few KiB: anything far larger is not one.
MAX_RECORD_BYTES: Final = 64 * 1024
MAX_FINGERPRINT_CHARS: Final = 512
# A snapshot record has about a dozen objects. Bounding the brackets (a cheap count, strings
# included) bounds the nesting far below the interpreter's recursion limit, so a record that
# parses also encodes, wherever in a stream it is encoded.
MAX_BRACKETS: Final = 256
_NAME: Final = re.compile(NAME_PATTERN.strip("^$"))
_MINER: Final = re.compile(MINER_PATTERN.strip("^$"))
_NO_FIGURE: Final = math.nan  # null in the summary's packed figures


class Kind(StrEnum):
    """The SSE event names of /live."""

    POOL = "pool"
    MINER = "miner"
    WORKER = "worker"
    ALERT = "alert"


class MalformedRecord(ValueError):
    """A record that is not what the topic's document describes; `reason` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LiveRecord:
    """One record as a subscriber gets it. `key` is what a subscriber's queue coalesces on.

    `data` (one line of JSON) is encoded on first use: most worker records reach no page."""

    __slots__ = ("_data", "_value", "key", "kind", "miner", "pool")

    def __init__(self, kind: Kind, key: str, pool: str | None, miner: str | None, value: dict[str, Any]) -> None:
        self.kind = kind
        self.key = key
        self.pool = pool
        self.miner = miner
        self._value: dict[str, Any] | None = value
        self._data: str | None = None

    @property
    def data(self) -> str:
        if self._data is None:
            assert self._value is not None
            self._data, self._value = _dumps(self._value), None
        return self._data


class MinerSummary:
    """What the console's miners list needs of one miner, packed: ~20 doubles in one array
    instead of the record's nested dicts (the hub keeps one per miner of every pool)."""

    __slots__ = ("as_of_ms", "figures", "last_share_at_ms", "miner", "online", "pool", "workers_online",
                 "workers_total")

    # Offsets of each per-window figure in `figures`: hashrate, lower, upper, efficiency.
    HASHRATE: Final = 0
    LOWER: Final = len(WINDOWS)
    UPPER: Final = 2 * len(WINDOWS)
    EFFICIENCY: Final = 3 * len(WINDOWS)

    def __init__(self, pool: str, miner: str, as_of_ms: int, figures: array[float], workers_online: int,
                 workers_total: int, last_share_at_ms: int | None, online: bool | None) -> None:
        self.pool = pool
        self.miner = miner
        self.as_of_ms = as_of_ms
        self.figures = figures
        self.workers_online = workers_online
        self.workers_total = workers_total
        self.last_share_at_ms = last_share_at_ms
        self.online = online

    def by_window(self, offset: int) -> dict[str, float | None]:
        values = self.figures[offset:offset + len(WINDOWS)]
        return {w: None if math.isnan(v) else v for w, v in zip(WINDOWS, values, strict=True)}

    def hashrate(self, window: str) -> float:
        return self.figures[self.HASHRATE + WINDOWS.index(window)]

    def as_record(self) -> LiveRecord:
        """A miner record carrying the summary's figures only (the shape of a snapshot's, fewer fields):
        what a page gets at once, before the next full miner record arrives."""
        figures = {
            "hashrate": self.by_window(self.HASHRATE), "hashrate_lower": self.by_window(self.LOWER),
            "hashrate_upper": self.by_window(self.UPPER), "efficiency": self.by_window(self.EFFICIENCY),
            "workers_online": self.workers_online, "workers_total": self.workers_total,
            "last_share_at_ms": self.last_share_at_ms, "online": self.online, "as_of_ms": self.as_of_ms,
        }
        value = {"entity": "miner", "pool": self.pool, "miner": self.miner, "as_of_ms": self.as_of_ms,
                 "figures": figures}
        return LiveRecord(Kind.MINER, _miner_key(self.pool, self.miner), self.pool, self.miner, value)


def _no_constants(name: str) -> Any:
    raise MalformedRecord(f"{name} is not JSON")


def _dumps(value: Any) -> str:
    # ASCII only: a line break or U+2028 inside a string stays escaped, so the record is one line.
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def _object(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_RECORD_BYTES:
        raise MalformedRecord(f"larger than {MAX_RECORD_BYTES} bytes")
    if raw.count(b"{") + raw.count(b"[") > MAX_BRACKETS:
        raise MalformedRecord(f"more than {MAX_BRACKETS} brackets")
    try:
        value = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, an integer past 4300 digits, nested too deep
        raise MalformedRecord("not JSON") from None
    if not isinstance(value, dict):
        raise MalformedRecord("not a JSON object")
    return value


def _name(value: dict[str, Any], field: str, pattern: re.Pattern[str], max_chars: int) -> str:
    name = value.get(field)
    if not isinstance(name, str) or not 1 <= len(name) <= max_chars or pattern.fullmatch(name) is None:
        raise MalformedRecord(f"{field}: not a valid name")
    return name


def _int(value: Any, field: str, *, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    # bool is an int in Python, never in these records.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise MalformedRecord(f"{field}: not a non-negative integer")
    return value


def _number(value: Any, field: str, *, nullable: bool) -> float:
    if value is None and nullable:
        return _NO_FIGURE
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise MalformedRecord(f"{field}: not a finite number")
    return float(value)


def _windows(figures: dict[str, Any], field: str, *, nullable: bool) -> list[float]:
    by_window = figures.get(field)
    if not isinstance(by_window, dict):
        raise MalformedRecord(f"figures.{field}: not an object by window")
    return [_number(by_window.get(w), f"figures.{field}.{w}", nullable=nullable) for w in WINDOWS]


def _miner_key(pool: str, miner: str) -> str:
    return f"miner:{pool}/{miner}"


def _summary(pool: str, miner: str, as_of_ms: int, figures: dict[str, Any]) -> MinerSummary:
    packed = array("d", _windows(figures, "hashrate", nullable=False))
    packed.extend(_windows(figures, "hashrate_lower", nullable=True))
    packed.extend(_windows(figures, "hashrate_upper", nullable=True))
    packed.extend(_windows(figures, "efficiency", nullable=True))
    online = figures.get("online")
    if online is not None and not isinstance(online, bool):
        raise MalformedRecord("figures.online: not a boolean")
    return MinerSummary(
        pool, miner, as_of_ms, packed,
        workers_online=_int(figures.get("workers_online"), "figures.workers_online") or 0,
        workers_total=_int(figures.get("workers_total"), "figures.workers_total") or 0,
        last_share_at_ms=_int(figures.get("last_share_at_ms"), "figures.last_share_at_ms", nullable=True),
        online=online,
    )


def parse_snapshot(raw: bytes) -> tuple[LiveRecord, MinerSummary | None]:
    """A snapshot record, and for a miner record its summary; MalformedRecord otherwise.

    The coalescing key is built from the checked fields, not taken from the Kafka key."""
    value = _object(raw)
    entity = value.get("entity")
    pool = _name(value, "pool", _NAME, 64)
    as_of_ms = _int(value.get("as_of_ms"), "as_of_ms")
    assert as_of_ms is not None  # not nullable
    figures = value.get("figures")
    if not isinstance(figures, dict):
        raise MalformedRecord("figures: not an object")
    if entity == "pool":
        return LiveRecord(Kind.POOL, f"pool:{pool}", pool, None, value), None
    miner = _name(value, "miner", _MINER, 128)
    if entity == "miner":
        summary = _summary(pool, miner, as_of_ms, figures)
        return LiveRecord(Kind.MINER, _miner_key(pool, miner), pool, miner, value), summary
    if entity == "worker":
        worker = _name(value, "worker", _NAME, 64)
        return LiveRecord(Kind.WORKER, f"worker:{pool}/{miner}/{worker}", pool, miner, value), None
    raise MalformedRecord("entity: not pool, miner or worker")


def parse_alert(raw: bytes) -> LiveRecord:
    """An alert record (its `pool` and `miner` labels, when valid names, say whose it is)."""
    value = _object(raw)
    fingerprint = value.get("fingerprint")
    if not isinstance(fingerprint, str) or not 1 <= len(fingerprint) <= MAX_FINGERPRINT_CHARS:
        raise MalformedRecord("fingerprint: not a string of 1 to 512 characters")
    if value.get("status") not in ("firing", "resolved"):
        raise MalformedRecord("status: not firing or resolved")
    labels = value.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise MalformedRecord("labels: not an object of strings")
    pool = labels.get("pool")
    miner = labels.get("miner")
    return LiveRecord(
        Kind.ALERT, f"alert:{fingerprint}",
        pool if isinstance(pool, str) and _NAME.fullmatch(pool) else None,
        miner if isinstance(miner, str) and len(miner) <= 128 and _MINER.fullmatch(miner) else None,
        value,
    )
