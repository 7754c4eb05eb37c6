"""Who mines in the simulated pool: miners, their workers and their healthy hashrates.

Real pools are a few ASIC farms holding most of the hashrate (rigs of tens
to hundreds of TH/s, often one model per farm) and a long tail of small
miners (USB sticks, Bitaxes, old rigs) spread over orders of magnitude.
Miners are named `<prefix>1..N` and workers `w1..wK`, so scenario files can
name them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final, Literal

from chimera.simulate.config import PoolConfig

__all__ = ["WorkerSpec", "make_population", "team_names"]

TH: Final = 1e12


@dataclass(frozen=True)
class _Model:
    name: str
    hashrate_hs: float
    user_agent: str
    weight: float


# Nominal hashrates of common SHA-256 rigs; a farm runs one model.
_ASIC_MODELS: Final = (
    _Model("antminer-s19", 95 * TH, "bmminer/1.0.0", 3),
    _Model("antminer-s19xp", 140 * TH, "bmminer/1.0.0", 3),
    _Model("antminer-s21", 200 * TH, "bmminer/2.0.0", 2),
    _Model("antminer-s21xp", 270 * TH, "bmminer/2.0.0", 1),
    _Model("whatsminer-m30s", 88 * TH, "btminer/3.1.0", 2),
    _Model("whatsminer-m50", 120 * TH, "btminer/3.1.0", 2),
    _Model("antminer-s17", 53 * TH, "bmminer/1.0.0", 1),
)
_SMALL_AGENTS: Final = ("cgminer/4.12.1", "bitaxe/2.4.1", "bfgminer/5.5.0", "NerdQAxe/1.0.3")
# The long tail: log-uniform from 50 GH/s to 15 TH/s.
_SMALL_LOG10_RANGE: Final = (10.7, 13.2)
_TEAM_NAMES: Final = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


@dataclass(frozen=True)
class WorkerSpec:
    """One worker as it is when healthy; the scenario and vardiff change it over time."""

    index: int  # position in the pool, the tie-break for events at the same millisecond
    miner: str
    worker: str
    hashrate_hs: float
    rig: Literal["asic", "small"]  # a farm's ASIC, or one of the long tail
    model: str
    user_agent: str
    node: str  # the pool node its stratum connection lands on
    team: str
    competing: bool  # entered in the pool's hashrate competition

    def as_json(self) -> dict[str, object]:
        return {"miner": self.miner, "worker": self.worker, "hashrate_hs": self.hashrate_hs,
                "rig": self.rig, "model": self.model, "node": self.node, "team": self.team,
                "competing": self.competing}


def team_names(count: int) -> list[str]:
    return [_TEAM_NAMES[i] if i < len(_TEAM_NAMES) else f"team-{i + 1}" for i in range(count)]


def make_population(config: PoolConfig, rng: random.Random) -> list[WorkerSpec]:
    teams = team_names(config.teams)
    weights = [model.weight for model in _ASIC_MODELS]
    workers: list[WorkerSpec] = []
    for number in range(1, config.miners + 1):
        miner = f"{config.miner_prefix}{number}"
        node = rng.choice(config.nodes)
        team = rng.choice(teams)
        competing = rng.random() < 0.5
        if rng.random() < config.asic_fraction:
            model = rng.choices(_ASIC_MODELS, weights)[0]
            # Farms: mostly a few rigs, now and then many (mean about 3).
            count = min(config.max_workers_per_miner, 1 + int(rng.expovariate(0.5)))
            for w in range(1, count + 1):
                # Rigs of one model differ by a few percent (chips, cooling, firmware).
                hashrate = model.hashrate_hs * rng.uniform(0.9, 1.05)
                workers.append(WorkerSpec(len(workers), miner, f"w{w}", hashrate, "asic", model.name,
                                          model.user_agent, node, team, competing))
        else:
            count = min(config.max_workers_per_miner, 1 if rng.random() < 0.7 else 2)
            for w in range(1, count + 1):
                hashrate = 10 ** rng.uniform(*_SMALL_LOG10_RANGE)
                workers.append(WorkerSpec(len(workers), miner, f"w{w}", hashrate, "small", "small",
                                          rng.choice(_SMALL_AGENTS), node, team, competing))
    return workers
