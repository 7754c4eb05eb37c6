"""The pool's other figures, sampled every `metrics_every_ms`: community metrics and host usage.

Community metrics are custom metrics (`POST /api/metrics`), gauges of the
interval that just ended, named as the default rule pack expects:
`team_activity{team}` (the team's miners with a worker online),
`referral_signups`, `competition_participants{competition}` and
`social_shares{platform}`. The first two follow the simulated miners, the
others are Poisson draws at plausible rates. Host usage (`POST
/api/metrics/performance`) is one row per pool node, its CPU and network
following the shares that node handled.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Final

from chimera.simulate.population import WorkerSpec
from chimera.simulate.records import MetricSample, PerformanceSample

__all__ = ["CommunityModel", "HostModel", "poisson"]

COMPETITION: Final = "weekly-hashrace"
REFERRALS_PER_HOUR: Final = 2.0
SOCIAL_SHARES_PER_HOUR: Final = {"discord": 10.0, "telegram": 4.0, "x": 6.0}
_SHARE_BYTES: Final = 350  # a mining.submit and its answer
_JOB_BYTES_PER_WORKER_MINUTE: Final = 2_000  # mining.notify every 30 s, and keepalives
_CORES: Final = 4


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: Knuth's product of uniforms, a normal approximation for large means."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class CommunityModel:
    def __init__(self, workers: list[WorkerSpec], rng: random.Random) -> None:
        self._rng = rng
        self._teams: dict[str, set[str]] = {}
        for spec in workers:
            self._teams.setdefault(spec.team, set()).add(spec.miner)
        self._competing = {spec.miner for spec in workers if spec.competing}

    def sample(self, at_ms: int, every_ms: int, online_miners: set[str]) -> list[MetricSample]:
        hours = every_ms / 3_600_000
        rng = self._rng
        samples = [MetricSample(at_ms, "team_activity", float(len(members & online_miners)), {"team": team})
                   for team, members in sorted(self._teams.items())]
        samples.append(MetricSample(at_ms, "referral_signups", float(poisson(rng, REFERRALS_PER_HOUR * hours))))
        samples.append(MetricSample(at_ms, "competition_participants",
                                    float(len(self._competing & online_miners)), {"competition": COMPETITION}))
        samples.extend(MetricSample(at_ms, "social_shares", float(poisson(rng, rate * hours)), {"platform": platform})
                       for platform, rate in SOCIAL_SHARES_PER_HOUR.items())
        return samples


@dataclass
class _Host:
    cpu_noise: float
    memory: float
    disk: float


class HostModel:
    def __init__(self, nodes: tuple[str, ...], rng: random.Random) -> None:
        self._rng = rng
        self._hosts = {node: _Host(0.0, rng.uniform(35, 55), rng.uniform(40, 60)) for node in nodes}

    def sample(self, at_ms: int, every_ms: int, shares: Counter[str],
               online_workers: Counter[str]) -> list[PerformanceSample]:
        rng = self._rng
        minutes = every_ms / 60_000
        samples: list[PerformanceSample] = []
        for node, host in self._hosts.items():
            # AR(1) noise: load wanders, it does not jump from sample to sample.
            host.cpu_noise = 0.8 * host.cpu_noise + rng.gauss(0, 2.0)
            shares_per_s = shares[node] / (every_ms / 1000)
            cpu = min(100.0, max(0.5, 6 + 1.5 * shares_per_s + 0.2 * online_workers[node] + host.cpu_noise))
            host.memory = min(90.0, max(20.0, host.memory + rng.gauss(0.01, 0.3)))
            # Logs and the share database grow; retention now and then gives some back.
            host.disk = min(99.0, max(5.0, host.disk + 0.002 * minutes + rng.gauss(0, 0.01)))
            jobs = int(online_workers[node] * _JOB_BYTES_PER_WORKER_MINUTE * minutes)
            inbound = shares[node] * _SHARE_BYTES + jobs // 4  # submits in, keepalive answers
            outbound = jobs + shares[node] * 120  # jobs out, submit answers
            load = max(0.0, cpu / 100 * _CORES + rng.gauss(0, 0.05))
            samples.append(PerformanceSample(at_ms, node, "stratum", round(cpu, 2), round(host.memory, 2),
                                             round(host.disk, 2), inbound, outbound, round(load, 2)))
        return samples
