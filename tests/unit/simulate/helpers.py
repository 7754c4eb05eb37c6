"""Running a simulated pool over a stretch of event time, and reading its truth back."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from chimera.simulate import (
    JsonEvent,
    MetricSample,
    PerformanceSample,
    PoolConfig,
    SimulatedPool,
    StateChange,
)
from shared.events import rfc3339_to_ms

START_MS: Final = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS


@dataclass
class Run:
    pool: SimulatedPool
    events: list[JsonEvent] = field(default_factory=list)
    metrics: list[MetricSample] = field(default_factory=list)
    performance: list[PerformanceSample] = field(default_factory=list)
    changes: list[StateChange] = field(default_factory=list)

    _accepted: dict[tuple[str, str], list[tuple[int, float]]] | None = None

    def accepted(self, miner: str, worker: str) -> list[tuple[int, float]]:
        """(ts_ms, difficulty) of the worker's accepted shares (indexed once: tests ask per worker)."""
        if self._accepted is None:
            self._accepted = {}
            for e in self.events:
                if e["type"] == "share" and e["status"] == "accepted":
                    key = (str(e["miner"]), str(e["worker"]))
                    self._accepted.setdefault(key, []).append((ts_ms(e), num(e["difficulty"])))
        return self._accepted.get((miner, worker), [])

    def shares(self, miner: str | None = None, worker: str | None = None) -> list[JsonEvent]:
        return [e for e in self.events if e["type"] == "share"
                and miner in (None, e["miner"]) and worker in (None, e["worker"])]

    def blocks(self, status: str | None = None) -> list[JsonEvent]:
        return [e for e in self.events if e["type"] == "block" and status in (None, e["status"])]


def simulate(config: PoolConfig | None = None, *, seed: int = 1, span_ms: int = HOUR_MS,
             steps: Iterable[int] | None = None) -> Run:
    """Advance a new pool from START_MS; `steps` (span lengths) cut the time differently."""
    pool = SimulatedPool(config, seed=seed)
    run = Run(pool)
    t = START_MS
    for step in steps if steps is not None else [span_ms]:
        span = pool.advance(t, t + step)
        run.events += span.events
        run.metrics += span.metrics
        run.performance += span.performance
        run.changes += span.changes
        t += step
    return run


def ts_ms(event: JsonEvent) -> int:
    return rfc3339_to_ms(str(event["ts"]))


def num(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"not a number: {value!r}")


def true_mean_hashrate(changes: list[StateChange], miner: str, worker: str, start_ms: int, end_ms: int) -> float:
    """The worker's true hashrate averaged over [start_ms, end_ms), from its state records."""
    mine = [c for c in changes if c.miner == miner and c.worker == worker]
    total = 0.0
    for i, change in enumerate(mine):
        until = mine[i + 1].t_ms if i + 1 < len(mine) else math.inf
        overlap = min(until, end_ms) - max(change.t_ms, start_ms)
        if overlap > 0:
            total += change.hashrate_hs * overlap
    return total / (end_ms - start_ms)


def accepted_difficulties(run: Run, miner: str | None, worker: str | None, start_ms: int, end_ms: int) -> list[float]:
    """Difficulties of accepted shares in [start_ms, end_ms): one worker's, or (None, None) everyone's."""
    workers = ([(miner, worker)] if miner is not None and worker is not None
               else [(w.miner, w.worker) for w in run.pool.workers])
    return [d for m, w in workers for t, d in run.accepted(m, w) if start_ms <= t < end_ms]
