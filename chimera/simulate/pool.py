"""`SimulatedPool`: the whole simulated pool, advanced span by span (pure, seeded).

    pool = SimulatedPool(PoolConfig(miners=20, scenario=Scenario.load(path)), seed=1)
    span = pool.advance(start_ms, start_ms + 1000)   # events, metrics, truth of that second
    span = pool.advance(start_ms + 1000, ...)        # spans follow one another

The first span begins with every worker connecting. Same config, seed and
start: the same stream, however the time is cut into spans. Event ids are
`<run_id>-<n>`, numbered in event-time order.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

from chimera.simulate.config import HASHES_PER_DIFFICULTY, PoolConfig
from chimera.simulate.metrics import CommunityModel, HostModel
from chimera.simulate.population import WorkerSpec, make_population
from chimera.simulate.records import (
    JsonEvent,
    MetricSample,
    PerformanceSample,
    StateChange,
    iso_ms,
)
from chimera.simulate.scenario import ScenarioError
from chimera.simulate.worker import Emitted, WorkerSim

__all__ = ["SimulatedPool", "Span"]

FIRST_HEIGHT: Final = 900_000


@dataclass(frozen=True)
class Span:
    """What happened in [start_ms, end_ms): events in event-time order, samples, truth."""

    start_ms: int
    end_ms: int
    events: list[JsonEvent] = field(default_factory=list)
    metrics: list[MetricSample] = field(default_factory=list)
    performance: list[PerformanceSample] = field(default_factory=list)
    changes: list[StateChange] = field(default_factory=list)


class SimulatedPool:
    def __init__(self, config: PoolConfig | None = None, seed: int = 1) -> None:
        self.config = config or PoolConfig()
        self.seed = seed
        self.workers: list[WorkerSpec] = make_population(self.config, random.Random(seed))
        unknown = self.config.scenario.unknown_targets({(w.miner, w.worker) for w in self.workers})
        if unknown:
            raise ScenarioError(f"the scenario names what the pool does not have: {', '.join(unknown)} "
                                f"(seed {seed} gives miners {self.config.miner_prefix}1.."
                                f"{self.config.miner_prefix}{self.config.miners})")
        credited_per_s = self.healthy_hashrate_hs * self.config.accepted_fraction / HASHES_PER_DIFFICULTY
        self.network_difficulty = (self.config.network_difficulty
                                   or credited_per_s * self.config.block_every_ms / 1000)
        self._sims: list[WorkerSim] = []
        self._origin_ms: int | None = None
        self._now_ms: int | None = None
        self._run_id = ""
        self._sequence = 0
        self._height = FIRST_HEIGHT
        self._heights: dict[str, int] = {}
        self._online: dict[int, bool] = {}
        self._pending_shares: Counter[str] = Counter()  # by node, since the last metrics sample
        self._community = CommunityModel(self.workers, random.Random(f"{seed}/community"))
        self._hosts = HostModel(self.config.nodes, random.Random(f"{seed}/hosts"))

    @property
    def healthy_hashrate_hs(self) -> float:
        return sum(w.hashrate_hs for w in self.workers)

    @property
    def pool_hashrate_hs(self) -> float:
        """The true hashrate right now (outages and degrades included)."""
        if not self._sims:
            return self.healthy_hashrate_hs
        return sum(sim.hashrate_hs for sim in self._sims)

    @property
    def started(self) -> bool:
        return self._origin_ms is not None

    @property
    def now_ms(self) -> int | None:
        """Where the simulation stands: the end of the last span (None before the start)."""
        return self._now_ms

    def start(self, start_ms: int) -> Span:
        """Start the pool at `start_ms`: every worker connects. Called by the first `advance`."""
        if self._origin_ms is not None:
            raise ValueError("the pool has already started")
        self._origin_ms = self._now_ms = start_ms
        self._run_id = self.config.run_id or f"sim{self.seed}-{start_ms:x}"
        self._sims = [WorkerSim(spec, self.config, self.network_difficulty,
                                random.Random(f"{self.seed}/{spec.miner}/{spec.worker}"), start_ms)
                      for spec in self.workers]
        self._online = {spec.index: True for spec in self.workers}
        emitted: list[Emitted] = []
        changes: list[StateChange] = []
        for sim in self._sims:
            raw, changed = sim.begin(start_ms)
            emitted += raw
            changes += changed
        return Span(start_ms, start_ms, [self._finish(e) for e in emitted], changes=changes)

    def advance(self, start_ms: int, end_ms: int) -> Span:
        """Everything in [start_ms, end_ms); `start_ms` is where the previous span ended."""
        opening = self.start(start_ms) if self._now_ms is None else None
        if start_ms != self._now_ms:
            raise ValueError(f"spans must follow one another: expected start {self._now_ms}, got {start_ms}")
        if end_ms < start_ms:
            raise ValueError("end_ms must not be before start_ms")
        emitted: list[Emitted] = []
        changes: list[StateChange] = []
        for sim in self._sims:
            raw, changed = sim.advance(end_ms)
            emitted += raw
            changes += changed
        emitted.sort(key=lambda e: (e.t_ms, e.index, e.seq))
        changes.sort(key=lambda c: (c.t_ms, c.index))
        events = [self._finish(e) for e in emitted]
        metrics, performance = self._samples(start_ms, end_ms, emitted, changes)
        self._now_ms = end_ms
        if opening is not None:
            return Span(start_ms, end_ms, opening.events + events, metrics, performance,
                        opening.changes + changes)
        return Span(start_ms, end_ms, events, metrics, performance, changes)

    def events(self, start_ms: int, end_ms: int) -> list[JsonEvent]:
        """The contract events of [start_ms, end_ms) (see `advance`)."""
        return self.advance(start_ms, end_ms).events

    # --- chimera/demo.py's calls, kept while it uses them ---------------------------------

    def connect_events(self, ts_ms: int) -> list[JsonEvent]:
        """Start the pool at `ts_ms` and return its workers' `connected` events."""
        return self.start(ts_ms).events

    def tick(self, start_ms: int, duration_ms: int) -> list[JsonEvent]:
        return self.events(start_ms, start_ms + duration_ms)

    # --- ground truth -------------------------------------------------------------------

    def describe(self) -> list[dict[str, object]]:
        """Truth records of the set-up: the run, each worker, each scheduled action."""
        config = self.config
        origin = self._origin_ms or 0
        run: dict[str, object] = {
            "kind": "run", "seed": self.seed, "start_ms": self._origin_ms, "run_id": self._run_id or None,
            "pool": config.pool, "miners": config.miners, "workers": len(self.workers),
            "healthy_hashrate_hs": self.healthy_hashrate_hs, "network_difficulty": self.network_difficulty,
            "share_rate": config.vardiff.share_rate, "reject_rate": config.reject_rate,
            "stale_rate": config.stale_rate, "orphan_rate": config.orphan_rate,
            "hashes_per_difficulty": HASHES_PER_DIFFICULTY, "scenario": config.scenario.description,
        }
        workers = [{"kind": "worker", **spec.as_json()} for spec in self.workers]
        scheduled = [{"kind": "scheduled", **action.as_json(), "ts_ms": origin + action.at_ms}
                     for action in config.scenario.actions]
        return [run, *workers, *scheduled]

    # --- internals ----------------------------------------------------------------------

    def _finish(self, emitted: Emitted) -> JsonEvent:
        self._sequence += 1
        ts_ms = int(emitted.t_ms)
        spec = self.workers[emitted.index]
        event: JsonEvent = {"event_id": f"{self._run_id}-{self._sequence}", "ts": iso_ms(ts_ms),
                            "pool": self.config.pool, "node": spec.node, **emitted.body}
        if emitted.block_hash is not None:
            # Heights follow event time, as on a chain; a block's later status keeps its height.
            height = self._heights.get(emitted.block_hash)
            if height is None:
                self._height += 1
                height = self._heights[emitted.block_hash] = self._height
            elif event["status"] != "candidate":
                del self._heights[emitted.block_hash]
            event["height"] = height
        return event

    def _samples(self, start_ms: int, end_ms: int, emitted: list[Emitted],
                 changes: list[StateChange]) -> tuple[list[MetricSample], list[PerformanceSample]]:
        """Metric samples at each `metrics_every_ms` mark in (start_ms, end_ms]."""
        origin = self._origin_ms or start_ms
        every = self.config.metrics_every_ms
        metrics: list[MetricSample] = []
        performance: list[PerformanceSample] = []
        e = c = 0
        mark = origin + ((start_ms - origin) // every + 1) * every
        while True:
            limit = mark if mark <= end_ms else end_ms + 1
            # Both lists are in time order: walk them up to the mark once.
            while e < len(emitted) and emitted[e].t_ms < limit:
                if emitted[e].body["type"] == "share":
                    self._pending_shares[self.workers[emitted[e].index].node] += 1
                e += 1
            while c < len(changes) and changes[c].t_ms < limit:
                self._online[changes[c].index] = changes[c].online
                c += 1
            if mark > end_ms:
                return metrics, performance
            online = [spec for spec in self.workers if self._online[spec.index]]
            metrics += self._community.sample(mark, every, {spec.miner for spec in online})
            performance += self._hosts.sample(mark, every, self._pending_shares,
                                              Counter(spec.node for spec in online))
            self._pending_shares = Counter()
            mark += every
