"""Observations, group states and records as bytes: the alerter's internal topic and tables.

Compact JSON (orjson): these travel through Kafka (the observations topic,
the tables' changelogs) and are rebuilt on recovery, so every field of the
domain objects is kept, and nothing else.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..domain.evaluate import Observation
from ..domain.lifecycle import GroupState, SeriesState
from ..domain.records import Reading, Record

__all__ = [
    "decode_observation",
    "decode_record",
    "decode_state",
    "encode_observation",
    "encode_record",
    "encode_state",
]


def _reading(r: Reading) -> list[Any]:
    return [r.series, dict(r.labels), r.at_ms, r.value, r.lower, r.upper, r.baseline]


def _unreading(v: list[Any]) -> Reading:
    return Reading(v[0], v[1], v[2], v[3], v[4], v[5], v[6])


def _exact(raw: bytes) -> bytes:
    """A copy of exactly its length: orjson's bytes sit in a buffer of 4 KiB at least, and
    the tables keep these for as long as the alert or series lives (ijl/orjson#483)."""
    return bytes(memoryview(raw))


def encode_observation(obs: Observation) -> bytes:
    return orjson.dumps([obs.fingerprint, obs.rule_id, obs.rule_version, dict(obs.labels), _reading(obs.reading),
                         obs.holds, obs.limit])


def decode_observation(raw: bytes) -> Observation:
    v = orjson.loads(raw)
    return Observation(v[0], v[1], v[2], v[3], _unreading(v[4]), v[5], v[6])


def encode_state(state: GroupState, partition: int) -> bytes:
    return _exact(orjson.dumps({
        "p": partition, "f": state.fingerprint, "r": state.rule_id, "rv": state.rule_version, "l": state.labels,
        "st": state.status, "s": state.starts_at_ms, "fa": state.fired_at_ms, "lt": state.last_true_ms,
        "v": state.value, "m": state.limit,
        "ser": {k: [_reading(s.reading), s.holds, s.limit] for k, s in state.series.items()},
        "last": _reading(state.last) if state.last is not None else None,
    }))


def decode_state(raw: bytes) -> tuple[GroupState, int]:
    """The state and the partition it lives in."""
    v = orjson.loads(raw)
    state = GroupState(v["f"], v["r"], v["l"], rule_version=v["rv"], status=v["st"], starts_at_ms=v["s"],
                       fired_at_ms=v["fa"], last_true_ms=v["lt"], value=v["v"], limit=v["m"],
                       series={k: SeriesState(_unreading(s[0]), s[1], s[2]) for k, s in v["ser"].items()},
                       last=_unreading(v["last"]) if v.get("last") is not None else None)
    return state, v["p"]


def encode_record(record: Record) -> bytes:
    return _exact(orjson.dumps([record.key, record.entity, dict(record.labels), record.at_ms,
                                dict(record.figures)]))


def decode_record(raw: bytes) -> Record:
    v = orjson.loads(raw)
    return Record(v[0], v[1], v[2], v[3], v[4])
