"""What the model hands out: contract events as JSON-ready dicts, metric samples, truth records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from shared.events import format_ts

__all__ = ["JsonEvent", "MetricSample", "PerformanceSample", "StateChange", "iso_ms"]

# An event of contract section 1, ready for orjson (`event_id`, `type`, `ts`, ...).
JsonEvent = dict[str, object]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def iso_ms(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, as the project writes times."""
    return format_ts(_EPOCH + timedelta(milliseconds=ms))


@dataclass(frozen=True)
class MetricSample:
    """A custom metric sample for `POST /api/metrics` (a gauge unless said otherwise)."""

    ts_ms: int
    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)
    type: str = "gauge"

    def body(self) -> dict[str, object]:
        return {"name": self.name, "type": self.type, "value": float(self.value),
                "labels": dict(self.labels), "timestamp": iso_ms(self.ts_ms)}


@dataclass(frozen=True)
class PerformanceSample:
    """A host's resource usage for `POST /api/metrics/performance` (usages in percent)."""

    ts_ms: int
    host: str
    service: str
    cpu_usage: float
    memory_usage: float
    disk_usage: float
    network_in_bytes: int
    network_out_bytes: int
    load_average: float

    def body(self) -> dict[str, object]:
        return {"host": self.host, "service": self.service, "cpu_usage": self.cpu_usage,
                "memory_usage": self.memory_usage, "disk_usage": self.disk_usage,
                "network_in_bytes": self.network_in_bytes, "network_out_bytes": self.network_out_bytes,
                "load_average": self.load_average, "timestamp": iso_ms(self.ts_ms)}


@dataclass(frozen=True)
class StateChange:
    """Ground truth: from `t_ms` on, the worker hashes at `hashrate_hs` (0 while offline)."""

    t_ms: float  # exact event time; shares are drawn against it
    index: int
    miner: str
    worker: str
    hashrate_hs: float
    online: bool
    factor: float  # share of its healthy hashrate it keeps
    difficulty: float  # the vardiff difficulty its shares now carry
    reason: str  # start, offline, online, degrade or retarget

    def as_json(self) -> dict[str, object]:
        return {"ts_ms": int(self.t_ms), "miner": self.miner, "worker": self.worker,
                "hashrate_hs": self.hashrate_hs, "online": self.online, "factor": self.factor,
                "difficulty": self.difficulty, "reason": self.reason}
