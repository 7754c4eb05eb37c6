"""POST /v1/events' fast path: a body's shares checked by shared/share_checks.py, not the models (no I/O).

Why: bulk pydantic validation and re-encoding the models were about half of
the service's CPU at 1,000-event batches (issue 15's profile). The proven
share checks accept only what the models surely accept, with the same values,
and `share_value` writes the very bytes `encode_event` would.

The models stay the authority: an event the checks do not accept (another
type, a form they do not prove, an invalid one) is decoded by `decode_batch`;
if any of those fails, or the body is not a plain JSON array or NDJSON of
objects within the limits, this answers None and the caller runs the whole
body through `decode_batch`, whose errors (indices, fields, messages, 413
versus 422) are then exactly today's.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, NamedTuple

import orjson

from shared.events import TOPIC_BY_TYPE, BatchTooLarge, InvalidEvent, decode_batch, encode_event, record_key
from shared.kafka.producer import OutgoingRecord
from shared.kafka.topics import topic_name
from shared.settings import ServiceSettings
from shared.share_checks import latest_ms_for, share_value, valid_share

__all__ = ["CheckedBatch", "check_batch"]


class CheckedBatch(NamedTuple):
    """Records ready for Kafka in body order, and the batch's per-type counts (telemetry)."""

    records: list[OutgoingRecord]
    counts: Counter[str]


def _items(raw: bytes, *, ndjson: bool, max_events: int) -> list[Any] | None:
    """The body's JSON values, or None when only the models can say what is wrong with it."""
    try:
        if ndjson:
            items = [orjson.loads(line) for line in raw.split(b"\n") if line.strip()]
        else:
            items = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(items) is not list or not 0 < len(items) <= max_events:
        return None
    return items


def check_batch(raw: bytes, *, ndjson: bool, max_events: int, now_ms: int,
                settings: ServiceSettings) -> CheckedBatch | None:
    """The body as Kafka records if every event is valid, else None (ask `decode_batch`)."""
    items = _items(raw, ndjson=ndjson, max_events=max_events)
    if items is None:
        return None
    latest_ms = latest_ms_for(now_ms)
    share_topic = topic_name(settings, TOPIC_BY_TYPE["share"])
    records: list[OutgoingRecord | None] = []
    others: list[Any] = []
    other_at: list[int] = []
    for index, item in enumerate(items):
        share = valid_share(item, latest_ms) if type(item) is dict else None
        if share is None:
            records.append(None)
            others.append(item)
            other_at.append(index)
        else:
            records.append(OutgoingRecord(share_topic, share.miner.encode(), share_value(share)))
    if len(others) == len(items):
        return None  # no checked share: the models' own path is the cheaper one
    counts: Counter[str] = Counter({"share": len(items) - len(others)})
    if others:
        try:
            events = decode_batch(orjson.dumps(others), max_events=max_events, now_ms=now_ms)
        except (InvalidEvent, BatchTooLarge):
            return None  # the whole body goes to the models, which name every error
        for index, event in zip(other_at, events, strict=True):
            records[index] = OutgoingRecord(topic_name(settings, TOPIC_BY_TYPE[event.type]),
                                            record_key(event), encode_event(event))
            counts[event.type] += 1
    return CheckedBatch([record for record in records if record is not None], counts)
