"""Kafka records to events, in bulk, with every bad record isolated (pure: no I/O).

Fast path: each value parsed by orjson; a share that plain checks can prove
valid becomes a `ValidShare` at once (shared/share_checks.py); every other record is
validated by the contract's models, in one pydantic call for the batch.
Values are parsed one by one rather than joined into one JSON array: a value
such as `{..},{..}` would otherwise shift every record after it. If the bulk
validation fails, the batch falls back to record-by-record validation, so the
bad records become dead letters with their reasons and the good ones are kept.

"More than 5 minutes in the future" is judged against the record's own Kafka
timestamp (capped at the wall clock), not the time of processing: a replay
after a crash then accepts and rejects exactly the same records as the first
run did, whatever the delay.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import orjson
from pydantic import TypeAdapter, ValidationError

from shared.events import (
    MAX_FUTURE_MS,
    TS_FUTURE_MESSAGE,
    Event,
    FieldError,
    InvalidEvent,
    decode_event,
)
from shared.kafka.consumer import Record
from shared.kafka.deadletter import DeadLetter
from shared.share_checks import valid_share

from ..domain.share import Share

__all__ = ["Decoded", "decode_records", "record_now_ms"]

_EVENTS: Final[TypeAdapter[list[Event]]] = TypeAdapter(list[Event])


@dataclass(slots=True)
class Decoded:
    # Aligned with the input records: the event, or None where the record was dead-lettered.
    # Shares may be `ValidShare`s rather than models: read them as `Share`. A columnar
    # decode (columnar_decode.py) holds a `ColumnarEvents` here: slice it, do not mutate it.
    events: Sequence[Event | Share | None] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)


def record_now_ms(record: Record, wall_ms: int) -> int:
    """The "now" a record's event time is judged against: when Kafka got it."""
    ts = record.timestamp
    return wall_ms if ts is None or ts <= 0 else min(ts, wall_ms)


def _letter(record: Record, reason: str, message: str, field_name: str = "") -> DeadLetter:
    return DeadLetter(record, reason, [{"field": field_name, "message": message}])


def decode_records(records: Sequence[Record], wall_ms: int | None = None) -> Decoded:
    wall = time.time_ns() // 1_000_000 if wall_ms is None else wall_ms
    aligned: list[Event | Share | None] = [None] * len(records)
    out = Decoded(events=aligned)
    items: list[object] = []
    positions: list[int] = []
    for i, record in enumerate(records):
        value = record.value
        if not value:
            out.letters.append(_letter(record, "empty record", "record has no value"))
            continue
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            out.letters.append(_letter(record, "undecodable", f"not valid JSON: {exc}"))
            continue
        if type(obj) is not dict:
            out.letters.append(_letter(record, "invalid event", "Event should be a JSON object"))
            continue
        ts = record.timestamp  # record_now_ms, inlined: this loop runs for every event
        share = valid_share(obj, (wall if ts is None or ts <= 0 or ts > wall else ts) + MAX_FUTURE_MS)
        if share is not None:
            aligned[i] = share
            continue
        items.append(obj)
        positions.append(i)
    if not items:
        return out
    # The most lenient "now" of the batch; each record's own bound is checked below.
    batch_now = max(record_now_ms(records[i], wall) for i in positions)
    try:
        events: list[Event] | None = _EVENTS.validate_python(items, context={"now_ms": batch_now})
    except ValidationError:
        events = None
    if events is None:
        for i in positions:
            record = records[i]
            try:
                aligned[i] = decode_event(record.value, now_ms=record_now_ms(record, wall))
            except InvalidEvent as exc:
                out.letters.append(DeadLetter.from_exception(record, exc))
        return out
    for i, event in zip(positions, events):
        record = records[i]
        if event.ts_ms > record_now_ms(record, wall) + MAX_FUTURE_MS:
            error = InvalidEvent([FieldError(None, "ts", TS_FUTURE_MESSAGE)])
            out.letters.append(DeadLetter.from_exception(record, error))
        else:
            aligned[i] = event
    return out
