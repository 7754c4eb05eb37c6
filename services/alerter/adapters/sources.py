"""The alerter's input records decoded into domain `Record`s, every bad one told apart.

`chimera.snapshots` (schema in docs/aggregator.md) and `pool.metrics` (the
metrics API's envelopes, shared/metric_envelopes.py). A record that does not
decode or breaks its schema raises `BadRecord` with the reason, for the dead
letter topic; evaluation goes on with the next one. Miner reports on
`pool.metrics` concern no rule: they decode to nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from pydantic import ValidationError

from shared.metric_envelopes import MetricEnvelope, PerformanceEnvelope, decode_envelope

from ..domain.records import Record

__all__ = ["BadRecord", "decode_metric", "decode_snapshot"]

_ENTITIES: Final = ("pool", "miner", "worker")
_PERFORMANCE: Final = ("cpu_usage", "memory_usage", "disk_usage", "network_in_bytes", "network_out_bytes",
                       "load_average")


class BadRecord(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def _text(value: Mapping[str, Any], name: str) -> str:
    text = value.get(name)
    if not isinstance(text, str) or not text or len(text) > 256:
        raise BadRecord(name, "must be a non-empty string of at most 256 characters")
    return text


def decode_snapshot(raw: bytes | None) -> Record:
    try:
        value = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as exc:
        raise BadRecord("", f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BadRecord("", "a snapshot record is a JSON object")
    entity = value.get("entity")
    if entity not in _ENTITIES:
        raise BadRecord("entity", f"must be one of {', '.join(_ENTITIES)}")
    labels = {"pool": _text(value, "pool")}
    if entity in ("miner", "worker"):
        labels["miner"] = _text(value, "miner")
    if entity == "worker":
        labels["worker"] = _text(value, "worker")
    at_ms = value.get("as_of_ms")
    if not isinstance(at_ms, int) or isinstance(at_ms, bool) or at_ms <= 0:
        raise BadRecord("as_of_ms", "must be a positive integer (epoch ms)")
    figures = value.get("figures")
    if not isinstance(figures, dict):
        raise BadRecord("figures", "must be an object")
    key = "/".join(labels[name] for name in ("pool", "miner", "worker") if name in labels)
    return Record(f"{entity}:{key}", entity, labels, at_ms, figures)


def decode_metric(raw: bytes | None) -> Record | None:
    try:
        envelope = decode_envelope(raw or b"")
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(part) for part in first.get("loc", ()))
        raise BadRecord(field, str(first.get("msg", "invalid metric envelope"))) from exc
    at_ms = int(envelope.ts.timestamp() * 1000)
    if isinstance(envelope, MetricEnvelope):
        labels = dict(envelope.labels)
        key = f"custom:{envelope.name}:{orjson.dumps(sorted(labels.items())).decode()}"
        return Record(key, "custom", labels, at_ms, {"name": envelope.name, "value": envelope.value})
    if isinstance(envelope, PerformanceEnvelope):
        figures = {name: getattr(envelope, name) for name in _PERFORMANCE if getattr(envelope, name) is not None}
        return Record(f"host:{envelope.host}", "performance", {"host": envelope.host,
                                                               "service": envelope.service}, at_ms, figures)
    return None
