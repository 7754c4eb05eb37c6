"""One worker as a discrete-event simulation: shares, vardiff, scenario actions, its blocks.

Each worker draws from its own `random.Random` (seeded from the pool's seed
and its name), and its events depend only on its own past, so the pool's
stream does not depend on how time is cut into spans: advancing to 1h at once
or in 3,600 ticks gives the same events.

Shares arrive as a Poisson process at rate hashrate / (difficulty * 2^32);
whenever that rate changes (a retarget, an outage, a degrade) the next
arrival is drawn afresh from that moment, which memorylessness makes exact.
A share's hash beats its target by a factor 1/U (U uniform on (0, 1]), so it
also meets the network's target, and is a block, with probability
difficulty / network_difficulty.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Final

from chimera.simulate.config import HASHES_PER_DIFFICULTY, PoolConfig
from chimera.simulate.population import WorkerSpec
from chimera.simulate.records import StateChange
from chimera.simulate.scenario import ScheduledAction
from chimera.simulate.vardiff import Vardiff, ideal_difficulty

__all__ = ["Emitted", "WorkerSim"]

# Bitcoin's difficulty-1 target: a hash at difficulty D is at most this / D.
_TARGET1: Final = 0xFFFF << 208
_REJECT_REASONS: Final = ("low difficulty share", "duplicate share", "invalid nonce")


@dataclass(frozen=True, slots=True)
class Emitted:
    """An event before the pool gives it an id, a time string, a pool and a node (and a height)."""

    t_ms: float
    index: int  # the worker's place in the pool: the tie-break at equal times
    seq: int  # the worker's own order
    body: dict[str, object]
    block_hash: str | None = None  # block events: the pool numbers heights by hash


class WorkerSim:
    def __init__(self, spec: WorkerSpec, config: PoolConfig, network_difficulty: float,
                 rng: random.Random, start_ms: int) -> None:
        self.spec = spec
        self._config = config
        self._network_difficulty = network_difficulty
        self._rng = rng
        self._actions = deque((start_ms + a.at_ms, a)
                              for a in config.scenario.for_worker(spec.miner, spec.worker))
        vardiff = config.vardiff
        start = vardiff.start_difficulty or ideal_difficulty(spec.hashrate_hs, vardiff)
        self._vardiff = Vardiff(vardiff, start, start_ms)
        self.online = True
        self.factor = 1.0
        self._followups: list[tuple[float, int, dict[str, object], str]] = []
        self._seq = 0
        self._events: list[Emitted] = []
        self._changes: list[StateChange] = []
        self._next_share = self._draw(start_ms)

    @property
    def hashrate_hs(self) -> float:
        """The true hashing rate right now."""
        return self.spec.hashrate_hs * self.factor if self.online else 0.0

    @property
    def difficulty(self) -> float:
        return self._vardiff.difficulty

    def begin(self, start_ms: int) -> tuple[list[Emitted], list[StateChange]]:
        """The worker connects as the pool starts."""
        self._connected(start_ms)
        self._change(start_ms, "start")
        return self._flush()

    def advance(self, end_ms: int) -> tuple[list[Emitted], list[StateChange]]:
        """Everything that happens to this worker before `end_ms`, in time order."""
        inf = math.inf
        while True:
            t_action = self._actions[0][0] if self._actions else inf
            t_followup = self._followups[0][0] if self._followups else inf
            t_check = self._vardiff.next_check_ms if self.online else inf
            t = min(t_action, t_followup, t_check, self._next_share)
            if t >= end_ms:
                break
            if t == t_action:
                self._act(t, self._actions.popleft()[1])
            elif t == t_followup:
                _, seq, body, block_hash = heapq.heappop(self._followups)
                self._events.append(Emitted(t, self.spec.index, seq, body, block_hash))
            elif t == t_check:
                if self._vardiff.on_check(t):
                    self._retargeted(t)
            else:
                self._share(t)
        return self._flush()

    def _flush(self) -> tuple[list[Emitted], list[StateChange]]:
        events, changes = self._events, self._changes
        self._events, self._changes = [], []
        return events, changes

    def _draw(self, now_ms: float) -> float:
        per_ms = self.hashrate_hs / (self._vardiff.difficulty * HASHES_PER_DIFFICULTY) / 1000
        return now_ms + self._rng.expovariate(per_ms) if per_ms > 0 else math.inf

    def _emit(self, t_ms: float, body: dict[str, object], block_hash: str | None = None) -> None:
        self._seq += 1
        self._events.append(Emitted(t_ms, self.spec.index, self._seq, body, block_hash))

    def _change(self, t_ms: float, reason: str) -> None:
        spec = self.spec
        self._changes.append(StateChange(t_ms, spec.index, spec.miner, spec.worker, self.hashrate_hs,
                                         self.online, self.factor, self._vardiff.difficulty, reason))

    def _who(self, kind: str) -> dict[str, object]:
        return {"type": kind, "miner": self.spec.miner, "worker": self.spec.worker}

    def _connected(self, t_ms: float) -> None:
        self._emit(t_ms, {**self._who("miner"), "state": "connected",
                          "difficulty": self._vardiff.difficulty, "user_agent": self.spec.user_agent})

    def _act(self, t_ms: float, action: ScheduledAction) -> None:
        if action.action == "offline":
            if not self.online:
                return
            self.online = False
            self._emit(t_ms, {**self._who("miner"), "state": "disconnected"})
        elif action.action == "online":
            if self.online:
                return
            self.online = True
            # A reconnecting miner suggests the difficulty it had; the pool judges it afresh.
            self._vardiff.restart(t_ms)
            self._connected(t_ms)
        else:
            self.factor = action.factor if action.factor is not None else 1.0
        self._next_share = self._draw(t_ms)
        self._change(t_ms, action.action)

    def _retargeted(self, t_ms: float) -> None:
        self._next_share = self._draw(t_ms)
        self._change(t_ms, "retarget")

    def _share(self, t_ms: float) -> None:
        config, rng = self._config, self._rng
        difficulty = self._vardiff.difficulty
        roll = rng.random()
        status = ("rejected" if roll < config.reject_rate
                  else "stale" if roll < config.reject_rate + config.stale_rate else "accepted")
        actual = difficulty / (1.0 - rng.random())
        body: dict[str, object] = {**self._who("share"), "difficulty": difficulty, "status": status,
                                   "actual_difficulty": actual}
        if status == "rejected":
            body["reject_reason"] = rng.choice(_REJECT_REASONS)
        elif status == "stale":
            body["reject_reason"] = "stale job"
        self._emit(t_ms, body)
        if status == "accepted" and actual >= self._network_difficulty:
            self._block(t_ms, actual)
        if self._vardiff.on_share(t_ms):
            self._retargeted(t_ms)
        else:
            self._next_share = self._draw(t_ms)

    def _block(self, t_ms: float, actual: float) -> None:
        config, rng = self._config, self._rng
        # A real block hash: below the network target, so it starts with many zeros.
        high = int(_TARGET1 / actual) >> 128 << 128
        block_hash = f"{high | rng.getrandbits(128):064x}"
        reward = round(config.block_reward + rng.uniform(0.02, 0.4), 8)  # subsidy plus fees
        orphaned = rng.random() < config.orphan_rate
        block: dict[str, object] = {**self._who("block"), "hash": block_hash,
                                    "network_difficulty": self._network_difficulty, "reward": reward,
                                    "status": "candidate"}
        self._emit(t_ms, block, block_hash)
        later = t_ms + (config.orphan_after_ms if orphaned else config.confirm_after_ms)
        outcome = {**block, "status": "orphaned" if orphaned else "confirmed", "reward": 0.0 if orphaned else reward}
        self._seq += 1
        heapq.heappush(self._followups, (later, self._seq, outcome, block_hash))
