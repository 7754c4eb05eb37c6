"""A simulated mining pool: miners and workers submitting shares as a Poisson process.

Pure and seeded: `SimulatedPool.tick(start_ms, duration_ms)` returns the
events (contract section 1, as JSON-ready dicts) that the pool's nodes would
have emitted in that interval, so the same seed gives the same stream. The
demo streams it to Kafka; tests and benchmarks use it as ground truth.

A worker hashing at H hashes/s with share difficulty D finds shares at
H / (D * 2^32) per second; each share solves a block with probability
D / network_difficulty.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

HASHES_PER_DIFFICULTY = 2**32

JsonEvent = dict[str, object]


@dataclass(frozen=True)
class SimulatedWorker:
    miner: str
    worker: str
    hashrate_hs: float
    difficulty: float

    @property
    def shares_per_second(self) -> float:
        return self.hashrate_hs / (self.difficulty * HASHES_PER_DIFFICULTY)


@dataclass(frozen=True)
class ShareOutcomes:
    """Probabilities of a submitted share's status."""

    rejected: float = 0.015
    stale: float = 0.005


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="milliseconds")


class SimulatedPool:
    def __init__(
        self,
        *,
        miners: int = 20,
        max_workers_per_miner: int = 4,
        shares_per_worker_per_second: float = 1.0,
        block_every_s: float = 120.0,
        pool: str = "main",
        nodes: tuple[str, ...] = ("sim-node-1", "sim-node-2"),
        outcomes: ShareOutcomes | None = None,
        seed: int = 1,
    ) -> None:
        self._rng = random.Random(seed)
        self._pool = pool
        self._nodes = nodes
        self._outcomes = outcomes or ShareOutcomes()
        self._sequence = 0
        self._height = 900_000
        self.workers: list[SimulatedWorker] = []
        for m in range(miners):
            miner = f"bc1qsim{m:04d}"
            for w in range(1 + self._rng.randrange(max_workers_per_miner)):
                # Hashrates of real fleets spread over orders of magnitude.
                hashrate = 10 ** self._rng.uniform(12.5, 14.5)
                rate = shares_per_worker_per_second * self._rng.uniform(0.5, 1.5)
                difficulty = hashrate / (rate * HASHES_PER_DIFFICULTY)
                self.workers.append(SimulatedWorker(miner, f"rig{w:02d}", hashrate, difficulty))
        pool_difficulty_per_s = sum(w.difficulty * w.shares_per_second for w in self.workers)
        self.network_difficulty = pool_difficulty_per_s * block_every_s

    @property
    def pool_hashrate_hs(self) -> float:
        return sum(w.hashrate_hs for w in self.workers)

    def _next_id(self, kind: str) -> str:
        self._sequence += 1
        return f"sim-{kind}-{self._sequence:012d}"

    def _base(self, kind: str, ts_ms: int) -> JsonEvent:
        return {
            "event_id": self._next_id(kind),
            "type": kind,
            "ts": _iso(ts_ms),
            "pool": self._pool,
            "node": self._nodes[self._sequence % len(self._nodes)],
        }

    def connect_events(self, ts_ms: int) -> list[JsonEvent]:
        return [
            {**self._base("miner", ts_ms), "miner": w.miner, "worker": w.worker,
             "state": "connected", "difficulty": w.difficulty, "user_agent": "cgminer/4.12.1"}
            for w in self.workers
        ]

    def tick(self, start_ms: int, duration_ms: int) -> list[JsonEvent]:
        """Every event of [start_ms, start_ms + duration_ms), in event-time order."""
        events: list[tuple[int, JsonEvent]] = []
        end_ms = start_ms + duration_ms
        for worker in self.workers:
            mean_gap_ms = 1000.0 / worker.shares_per_second
            ts = start_ms + self._rng.expovariate(1.0 / mean_gap_ms)
            while ts < end_ms:
                events.extend(self._share(worker, int(ts)))
                ts += self._rng.expovariate(1.0 / mean_gap_ms)
        events.sort(key=lambda pair: pair[0])
        ordered = [event for _, event in events]
        # Heights follow event time, as on a real chain.
        for event in ordered:
            if event["type"] == "block":
                self._height += 1
                event["height"] = self._height
        return ordered

    def _share(self, worker: SimulatedWorker, ts_ms: int) -> list[tuple[int, JsonEvent]]:
        roll = self._rng.random()
        status = (
            "rejected" if roll < self._outcomes.rejected
            else "stale" if roll < self._outcomes.rejected + self._outcomes.stale
            else "accepted"
        )
        # The hash beats the share target by an exponential factor (memoryless hashing).
        actual = worker.difficulty / max(self._rng.random(), 1e-12)
        share: JsonEvent = {
            **self._base("share", ts_ms), "miner": worker.miner, "worker": worker.worker,
            "difficulty": worker.difficulty, "status": status, "actual_difficulty": actual,
        }
        if status == "rejected":
            share["reject_reason"] = "low difficulty share"
        produced = [(ts_ms, share)]
        if status == "accepted" and actual >= self.network_difficulty:
            block: JsonEvent = {
                **self._base("block", ts_ms), "miner": worker.miner, "worker": worker.worker,
                "height": -1, "hash": f"{self._rng.getrandbits(256):064x}",
                "network_difficulty": self.network_difficulty, "reward": 3.125,
                "status": "candidate",
            }
            produced.append((ts_ms, block))
        return produced
