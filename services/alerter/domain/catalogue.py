"""The metric names a rule may use, what labels their series carry, and their unit (pure).

Three sources feed series:
- the aggregator's snapshot stream (`chimera.snapshots`): pool, miner and
  worker figures, some by window (`1m` ... `24h`);
- performance metrics of the metrics API (`pool.metrics`), by host;
- custom metrics of the metrics API, by name, with the labels they were
  posted with (their names are not known in advance: a rule names one the
  pool has posted).

A `MetricSpec` says where a figure is found in a snapshot record's `figures`:
`figure` is the key, `windowed` whether it is keyed by window, and
`interval` whether `hashrate_lower`/`hashrate_upper` stand beside it (then a
rule may ask for a confidence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "AGGREGATOR_METRICS",
    "LUCK_BLOCKS",
    "PERFORMANCE_METRICS",
    "WINDOWS",
    "Entity",
    "MetricSpec",
    "custom_spec",
    "spec_of",
]

Entity = Literal["pool", "miner", "worker", "performance", "custom"]
WINDOWS: Final = ("1m", "5m", "15m", "1h", "24h")
LUCK_BLOCKS: Final = ("64", "128", "256")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    entity: Entity
    labels: tuple[str, ...]
    unit: str
    figure: str = ""  # key in a snapshot record's `figures`
    windowed: bool = False
    interval: bool = False  # hashrate_lower / hashrate_upper beside it
    description: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "entity": self.entity, "labels": list(self.labels), "unit": self.unit,
                "windows": list(WINDOWS) if self.windowed else [], "confidence": self.interval,
                "description": self.description}


_POOL: Final = ("pool",)
_MINER: Final = ("pool", "miner")
_WORKER: Final = ("pool", "miner", "worker")


def _entity_metrics(entity: Entity, labels: tuple[str, ...]) -> list[MetricSpec]:
    prefix = {"pool": "pool_total", "miner": "miner", "worker": "worker"}[entity]
    short = {"pool": "pool", "miner": "miner", "worker": "worker"}[entity]
    return [
        MetricSpec(f"{prefix}_hashrate", entity, labels, "H/s", "hashrate", True, True,
                   "hashrate over the window (accepted difficulty x multiplier / window seconds)"),
        MetricSpec(f"{short}_shares_per_second", entity, labels, "1/s", "shares_per_second", True,
                   description="shares submitted per second over the window (all statuses)"),
        MetricSpec(f"{short}_efficiency", entity, labels, "ratio", "efficiency", True,
                   description="accepted / submitted shares over the window"),
    ]


AGGREGATOR_METRICS: Final[dict[str, MetricSpec]] = {
    spec.name: spec
    for spec in (
        *_entity_metrics("pool", _POOL),
        MetricSpec("pool_active_miners", "pool", _POOL, "miners", "active_miners",
                   description="miners with a worker online now"),
        MetricSpec("pool_active_workers", "pool", _POOL, "workers", "active_workers",
                   description="workers online now"),
        MetricSpec("pool_round_effort", "pool", _POOL, "ratio", "round_effort",
                   description="the current round's accepted difficulty / network difficulty"),
        MetricSpec("pool_luck", "pool", ("pool", "blocks"), "ratio", "luck",
                   description="blocks found / blocks expected over the last n blocks (label blocks: 64, 128, 256)"),
        MetricSpec("pool_blocks_found", "pool", _POOL, "blocks", "blocks_found",
                   description="blocks found by the pool"),
        *_entity_metrics("miner", _MINER),
        MetricSpec("miner_online", "miner", _MINER, "bool", "online", description="1 while any worker is online"),
        MetricSpec("miner_workers_online", "miner", _MINER, "workers", "workers_online",
                   description="the miner's workers online now"),
        *_entity_metrics("worker", _WORKER),
        MetricSpec("worker_online", "worker", _WORKER, "bool", "online",
                   description="1 while the worker is online (the aggregator's rate-scaled liveness), else 0"),
        MetricSpec("worker_seconds_since_last_share", "worker", _WORKER, "s", "last_share_at_ms",
                   description="seconds from the worker's newest share to the record's time"),
    )
}

PERFORMANCE_METRICS: Final[dict[str, MetricSpec]] = {
    name: MetricSpec(name, "performance", ("host", "service"), unit, description=f"performance metric {name} by host")
    for name, unit in (("cpu_usage", "percent"), ("memory_usage", "percent"), ("disk_usage", "percent"),
                       ("network_in_bytes", "bytes"), ("network_out_bytes", "bytes"), ("load_average", "load"))
}


def custom_spec(name: str, labels: tuple[str, ...] = ()) -> MetricSpec:
    return MetricSpec(name, "custom", labels, "", description="custom metric posted through POST /api/metrics")


def spec_of(name: str, custom_names: frozenset[str] | set[str] = frozenset()) -> MetricSpec | None:
    """The spec of a metric a rule may use; None when the name is unknown."""
    spec = AGGREGATOR_METRICS.get(name) or PERFORMANCE_METRICS.get(name)
    if spec is not None:
        return spec
    return custom_spec(name) if name in custom_names else None
