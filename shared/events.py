"""The three pool events (contract section 1) and their JSON codec.

Validation is declarative wherever pydantic can do it (strict types, lengths,
patterns: all enforced in Rust), so bulk decoding stays cheap; `ts` is the one
field with a Python validator, because its bounds depend on "now".
Strict mode matters: a pool node that sends `"difficulty": "5"` or `true` has a
bug, and coercing it would hide the bug while crediting shares.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "TOPIC_BY_TYPE",
    "BatchTooLarge",
    "BlockEvent",
    "Event",
    "FieldError",
    "InvalidEvent",
    "MinerEvent",
    "ShareEvent",
    "decode_batch",
    "decode_event",
    "encode_event",
    "format_ts",
    "record_key",
    "rfc3339_to_ms",
]

TOPIC_BY_TYPE: Final[dict[str, str]] = {
    "share": "pool.shares",
    "block": "pool.blocks",
    "miner": "pool.miners",
}

# --- timestamps -------------------------------------------------------------

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
# Lower bound: 2009-01-01T00:00:00Z, just before the Bitcoin genesis block; no
# mining event can be older, so anything earlier is a unit mistake (seconds or
# microseconds sent as ms) or a node with a reset clock. It also rules out
# negative epoch values.
MIN_TS_MS: Final = 1_230_768_000_000
MAX_FUTURE_MS: Final = 5 * 60 * 1000
TS_FUTURE_MESSAGE: Final = "Timestamp is more than 5 minutes in the future"
# RFC 3339 section 5.6 only (fromisoformat alone also takes ISO 8601 forms such
# as "20260101T00" or date-only strings); a space separator is allowed by its note.
_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_NAIVE: Final = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?", re.ASCII)
_TS_TYPE_MESSAGE: Final = "Input should be an RFC 3339 date-time or integer epoch milliseconds"


def _err(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def rfc3339_to_ms(value: str) -> int:
    """Epoch ms of an RFC 3339 date-time with offset; ValueError (a pydantic custom error) if not one."""
    if _RFC3339.fullmatch(value) is None:
        if _NAIVE.fullmatch(value) is not None:
            raise _err("ts_naive", "Timestamp must include a UTC offset such as Z or +02:00")
        raise _err("ts_format", _TS_TYPE_MESSAGE)
    try:
        parsed = datetime.fromisoformat(value.upper())  # 3.11 rejects lowercase t/z
    except ValueError:  # e.g. month 13 or a leap second ":60"
        raise _err("ts_format", "Input should be a valid RFC 3339 date-time") from None
    return (parsed - _EPOCH) // _ONE_MS


def _validate_ts(value: object, info: ValidationInfo) -> datetime:
    # Runs per event in bulk decoding, hence inlined and branch-light.
    # type() rather than isinstance(): bool is an int subclass and must be refused.
    if type(value) is int:
        ms = value
    elif type(value) is str:
        ms = rfc3339_to_ms(value)
    elif isinstance(value, datetime):  # Python callers only; JSON never yields one
        if value.utcoffset() is None:
            raise _err("ts_naive", "Timestamp must include a UTC offset such as Z or +02:00")
        ms = (value - _EPOCH) // _ONE_MS
    else:
        raise _err("ts_type", _TS_TYPE_MESSAGE)
    if ms < MIN_TS_MS:
        raise _err("ts_too_old", "Timestamp is before 2009-01-01T00:00:00Z")
    context = info.context
    now_ms = context.get("now_ms") if context is not None else None
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    if ms > now_ms + MAX_FUTURE_MS:
        raise _err("ts_future", TS_FUTURE_MESSAGE)
    # Rebuilt from whole ms so `ts`, `ts_ms` and the encoded form always agree.
    # (_ONE_MS * ms is exact integer arithmetic and 3x cheaper than timedelta(milliseconds=).)
    return _EPOCH + _ONE_MS * ms


def format_ts(value: datetime) -> str:
    """RFC 3339 UTC with milliseconds, the one form this project writes."""
    # isoformat is C and ~5x faster than strftime; in UTC it always ends "+00:00".
    return value.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


Timestamp = Annotated[
    datetime,
    PlainValidator(_validate_ts),
    PlainSerializer(format_ts, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "integer"},
            ],
            "description": "Event time: RFC 3339 with offset, or integer epoch milliseconds. "
            "At most 5 minutes in the future, not before 2009-01-01.",
        }
    ),
]

# --- field types ------------------------------------------------------------

# Patterns run in pydantic-core's Rust regex engine, which is Unicode-aware:
# \s is White_Space and \p{..} are general categories.
NAME_PATTERN: Final = r"^[A-Za-z0-9._-]+$"
# "Printable" as in str.isprintable(): no Other (C*) or separator (Z*) chars, but space.
EVENT_ID_PATTERN: Final = r"^(?:[^\p{C}\p{Z}]| )+$"
# Printable ASCII, '!' (0x21) to '~' (0x7E), as wallet addresses and pool usernames
# are: no whitespace, and no look-alike (Cyrillic 'а', fullwidth 'ａ') or invisible
# (zero-width, bidi override) characters, so two miners cannot show a person the
# same name. Plain on purpose: Rust regex (pydantic), ECMA-262 (JSON Schema, OpenAPI
# tools) and Python `re` read the class alike (though `re.search`'s `$` also matches
# before a final newline, hence `re.fullmatch` in Python-side checks).
MINER_PATTERN: Final = r"^[!-~]+$"
HASH_PATTERN: Final = r"^[0-9A-Fa-f]+$"

# Friendlier words than "should match pattern '^...$'" for people reading a 422.
PATTERN_MESSAGES: Final[dict[str, str]] = {
    NAME_PATTERN: "String should contain only letters, digits, '.', '_' and '-'",
    EVENT_ID_PATTERN: "String should contain only printable characters",
    MINER_PATTERN: "String should contain only printable ASCII characters ! to ~: "
    "no spaces, no look-alike or invisible characters",
    HASH_PATTERN: "String should contain only hexadecimal characters",
}

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]
EventId = Annotated[str, Field(min_length=1, max_length=64, pattern=EVENT_ID_PATTERN)]
Miner = Annotated[str, Field(min_length=1, max_length=128, pattern=MINER_PATTERN)]
# Lower-cased so the same block found by two nodes compares equal downstream.
BlockHash = Annotated[
    str,
    Field(min_length=64, max_length=64, pattern=HASH_PATTERN),
    AfterValidator(lambda v: v.lower()),
]
# Strict float accepts JSON integers but not bools or strings; orjson already
# refuses NaN/Infinity literals and numbers that overflow a double.
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _EventBase(BaseModel):
    # strict=True: no coercion anywhere (see module docstring). Build events by
    # validation, not model_copy(update=...), which would leave ts_ms stale.
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    event_id: EventId
    type: str
    ts: Timestamp
    pool: Name = "main"
    node: Name

    def model_post_init(self, context: Any, /) -> None:
        # Filled at validation: aggregation reads it for every event at 50k/s, and
        # a plain instance-dict hit is ~30x cheaper than a pydantic private attribute.
        self.__dict__["ts_ms"] = (self.ts - _EPOCH) // _ONE_MS

    @cached_property
    def ts_ms(self) -> int:
        """Event time as integer epoch milliseconds (UTC)."""
        # Only reached if model_post_init was bypassed (e.g. model_construct variants).
        return (self.ts - _EPOCH) // _ONE_MS


class ShareEvent(_EventBase):
    """A share submitted by a miner's worker and judged by the pool node."""

    type: Literal["share"]
    miner: Miner
    worker: Name = "default"
    difficulty: Positive = Field(description="Difficulty credited for the share")
    status: Literal["accepted", "rejected", "stale"]
    reject_reason: Annotated[str, Field(max_length=128)] | None = None
    actual_difficulty: Positive | None = Field(
        default=None, description="Difficulty the hash actually achieved"
    )


class BlockEvent(_EventBase):
    """A block found by the pool, and later its confirmation or orphaning."""

    type: Literal["block"]
    miner: Miner
    worker: Name = "default"
    height: Annotated[int, Field(ge=0)]
    hash: BlockHash
    network_difficulty: Positive
    reward: NonNegative | None = None
    status: Literal["candidate", "confirmed", "orphaned"]


class MinerEvent(_EventBase):
    """A worker connecting to or disconnecting from a pool node."""

    type: Literal["miner"]
    miner: Miner
    worker: Name = "default"
    state: Literal["connected", "disconnected"]
    difficulty: Positive | None = None
    user_agent: Annotated[str, Field(max_length=256)] | None = None


Event = Annotated[ShareEvent | BlockEvent | MinerEvent, Field(discriminator="type")]

_EVENT: Final[TypeAdapter[Event]] = TypeAdapter(Event)
_BATCH: Final[TypeAdapter[list[Event]]] = TypeAdapter(list[Event])
_TAGS: Final = frozenset(TOPIC_BY_TYPE)

# --- errors -----------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    index: int | None  # position in a batch, None for a single record
    field: str  # dotted path like "difficulty"; "" for the whole record/body
    message: str


class InvalidEvent(Exception):
    """One or more events failed to decode; `errors` says where and why."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        shown = "; ".join(
            f"[{e.index}] {e.field or '<record>'}: {e.message}" if e.index is not None
            else f"{e.field or '<record>'}: {e.message}"
            for e in errors[:5]
        )
        more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"invalid event: {shown}{more}")


class BatchTooLarge(Exception):
    """A batch holds more events than allowed (HTTP 413, not 422)."""

    def __init__(self, count: int, limit: int) -> None:
        self.count = count
        self.limit = limit
        super().__init__(f"batch of {count} events exceeds the limit of {limit}")


_EXPECTED_TYPES: Final = "expected share, block or miner"
_NOT_OBJECT: Final = "Event should be a JSON object"


def _message(err: Any) -> tuple[str | None, str]:
    """(field override or None, human-readable message) for one pydantic error."""
    kind = err["type"]
    if kind == "union_tag_invalid":
        tag = err["input"].get("type")
        if isinstance(tag, str):
            return "type", f"unknown event type {tag!r}; {_EXPECTED_TYPES}"
        return "type", f"event type should be a string; {_EXPECTED_TYPES}"
    if kind == "union_tag_not_found":
        return "type", f"Field required; {_EXPECTED_TYPES}"
    if kind in ("model_attributes_type", "model_type", "dict_type"):
        return "", _NOT_OBJECT
    if kind == "string_pattern_mismatch":
        return None, PATTERN_MESSAGES.get(err["ctx"]["pattern"], err["msg"])
    return None, err["msg"]


def _field_errors(exc: ValidationError, *, batch: bool) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors(include_url=False, include_context=True, include_input=True):
        loc = err["loc"]
        index: int | None = None
        if batch:
            index, loc = loc[0], loc[1:]
        if loc and loc[0] in _TAGS:  # the tagged-union branch, not a field
            loc = loc[1:]
        field, message = _message(err)
        out.append(FieldError(index, ".".join(map(str, loc)) if field is None else field, message))
    return out


def _context(now_ms: int | None) -> dict[str, int]:
    # One "now" per call keeps a batch consistent and spares a clock read per event.
    return {"now_ms": time.time_ns() // 1_000_000 if now_ms is None else now_ms}


def _loads(raw: bytes | str) -> Any:
    if not raw.strip():
        raise InvalidEvent([FieldError(None, "", "Body is empty")])
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent([FieldError(None, "", f"Body is not valid JSON: {exc}")]) from None


# --- codec ------------------------------------------------------------------


def decode_event(raw: bytes, *, now_ms: int | None = None) -> Event:
    """Decode and validate one event (a Kafka record value)."""
    obj = _loads(raw)
    if type(obj) is not dict:
        raise InvalidEvent([FieldError(None, "", _NOT_OBJECT)])
    try:
        return _EVENT.validate_python(obj, context=_context(now_ms))
    except ValidationError as exc:
        raise InvalidEvent(_field_errors(exc, batch=False)) from None


def _ndjson_items(raw: bytes, max_events: int) -> tuple[list[Any], list[FieldError]]:
    lines = [line for line in raw.split(b"\n") if line.strip()]
    if len(lines) > max_events:
        raise BatchTooLarge(len(lines), max_events)
    try:  # fast path: every line parses
        return [orjson.loads(line) for line in lines], []
    except orjson.JSONDecodeError:
        pass
    items: list[Any] = []
    errors: list[FieldError] = []
    for index, line in enumerate(lines):
        try:
            items.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            items.append({})  # placeholder keeps indices aligned; its errors are dropped
            errors.append(FieldError(index, "", f"Line is not valid JSON: {exc}"))
    return items, errors


def decode_batch(
    raw: bytes,
    *,
    ndjson: bool = False,
    max_events: int = 10_000,
    now_ms: int | None = None,
) -> list[Event]:
    """Decode a JSON array (or NDJSON) of events, all or nothing.

    Indices count events: for NDJSON, non-empty lines.
    """
    if ndjson:
        items, errors = _ndjson_items(raw, max_events)
    else:
        items, errors = _loads(raw), []
        if type(items) is not list:
            raise InvalidEvent([FieldError(None, "", "Body should be a JSON array of events")])
        if len(items) > max_events:
            raise BatchTooLarge(len(items), max_events)
    if not items:
        raise InvalidEvent([FieldError(None, "", "Batch is empty; expected at least one event")])
    try:
        events = _BATCH.validate_python(items, context=_context(now_ms))
    except ValidationError as exc:
        unparsable = {e.index for e in errors}
        errors += [e for e in _field_errors(exc, batch=True) if e.index not in unparsable]
        errors.sort(key=lambda e: e.index or 0)  # stable: keeps a record's own order
    if errors:
        raise InvalidEvent(errors)
    return events


def encode_event(event: Event) -> bytes:
    """The event as JSON; `ts` as RFC 3339 UTC with milliseconds, unset optionals left out."""
    return orjson.dumps(event.model_dump(mode="json", exclude_none=True))


def record_key(event: Event) -> bytes:
    """Kafka record key: the miner, so one miner's events stay in one partition."""
    return event.miner.encode("utf-8")
