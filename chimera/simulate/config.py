"""What a simulated pool is made of: population, vardiff, share outcomes, blocks, metrics.

Plain frozen dataclasses, checked on construction so a bad flag or scenario
stops before anything is sent. Times are milliseconds, rates per second.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Final, Literal

from chimera.simulate.scenario import Scenario

__all__ = ["HASHES_PER_DIFFICULTY", "PoolConfig", "VardiffConfig"]

# Contract section 2: SHA-256d does 2^32 hashes per unit of share difficulty.
HASHES_PER_DIFFICULTY: Final = 2.0**32

_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_RUN_ID: Final = re.compile(r"[!-~]{1,40}")


@dataclass(frozen=True)
class VardiffConfig:
    """Per-worker difficulty retargeting, aiming at `share_rate` shares per second.

    At every `retarget_ms` (or at once when a window holds `flood_shares`
    shares) the pool estimates the worker's hashrate from the window's shares
    and moves the difficulty to the level that rate calls for, but only when
    that level is more than `tolerance_log2` powers of two away: pools hold a
    difficulty steady rather than chase Poisson noise. A window with no share
    at all quarters the difficulty; one with fewer than `min_shares` waits for
    more evidence (up to four intervals).
    """

    share_rate: float = 0.2
    retarget_ms: int = 90_000
    min_shares: int = 8
    flood_shares: int = 64
    tolerance_log2: float = 1.0
    min_difficulty: float = 1.0
    max_difficulty: float = 2.0**48
    # None: a worker starts at the level its hashrate calls for, as a miner that
    # sends mining.suggest_difficulty does; a number: every worker starts there.
    start_difficulty: float | None = None
    rounding: Literal["pow2", "exact"] = "pow2"

    def __post_init__(self) -> None:
        _positive("share_rate", self.share_rate)
        _positive("min_difficulty", self.min_difficulty)
        if not self.min_difficulty <= self.max_difficulty < math.inf:
            raise ValueError("vardiff: max_difficulty must be finite and >= min_difficulty")
        if self.start_difficulty is not None:
            _positive("start_difficulty", self.start_difficulty)
        if self.retarget_ms < 1_000 or self.min_shares < 1 or self.flood_shares <= self.min_shares:
            raise ValueError("vardiff: retarget_ms >= 1000 and flood_shares > min_shares >= 1")
        if not 0 <= self.tolerance_log2 < 8:
            raise ValueError("vardiff: tolerance_log2 must be in [0, 8)")


@dataclass(frozen=True)
class PoolConfig:
    """A pool of `miners` miners; hashrates and worker counts are drawn from the seed."""

    miners: int = 20
    pool: str = "main"
    nodes: tuple[str, ...] = ("sim-node-1", "sim-node-2")
    miner_prefix: str = "m"
    # Share of miners that are ASIC farms (several rigs of tens to hundreds of TH/s);
    # the rest are the long tail of small miners.
    asic_fraction: float = 0.6
    max_workers_per_miner: int = 8
    vardiff: VardiffConfig = field(default_factory=VardiffConfig)
    reject_rate: float = 0.01
    stale_rate: float = 0.005
    # None: derived so the pool finds a block every `block_every_ms` on average.
    network_difficulty: float | None = None
    block_every_ms: int = 600_000
    orphan_rate: float = 0.02
    # A found block is reported `candidate`, then `confirmed` or `orphaned` this much later
    # (shortened from Bitcoin's 100 blocks so a session sees both).
    confirm_after_ms: int = 20 * 60_000
    orphan_after_ms: int = 2 * 60_000
    block_reward: float = 3.125
    metrics_every_ms: int = 60_000
    teams: int = 4
    scenario: Scenario = field(default_factory=Scenario)
    # Prefix of every event_id; None: "sim<seed>-<start in hex>", so a second run
    # of the same seed is not swallowed by the ingest's event_id dedup.
    run_id: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.miners <= 100_000:
            raise ValueError("miners must be between 1 and 100000")
        if not 1 <= self.max_workers_per_miner <= 256:
            raise ValueError("max_workers_per_miner must be between 1 and 256")
        for name in (self.pool, self.miner_prefix, *self.nodes):
            if _NAME.fullmatch(name) is None:
                raise ValueError(f"{name!r}: names are 1-64 of letters, digits, '.', '_' and '-'")
        if not self.nodes:
            raise ValueError("at least one node")
        for label, rate in (("asic_fraction", self.asic_fraction), ("orphan_rate", self.orphan_rate)):
            if not 0 <= rate <= 1:
                raise ValueError(f"{label} must be in [0, 1]")
        if self.reject_rate < 0 or self.stale_rate < 0 or self.reject_rate + self.stale_rate >= 1:
            raise ValueError("reject_rate and stale_rate must be >= 0 and add up to less than 1")
        if self.network_difficulty is not None:
            _positive("network_difficulty", self.network_difficulty)
        for label, ms in (("block_every_ms", self.block_every_ms), ("metrics_every_ms", self.metrics_every_ms),
                          ("confirm_after_ms", self.confirm_after_ms), ("orphan_after_ms", self.orphan_after_ms)):
            if ms < 1:
                raise ValueError(f"{label} must be >= 1")
        if self.block_reward < 0 or self.teams < 1:
            raise ValueError("block_reward must be >= 0 and teams >= 1")
        if self.run_id is not None and _RUN_ID.fullmatch(self.run_id) is None:
            raise ValueError("run_id must be 1-40 printable ASCII characters (event_ids are at most 64)")

    @property
    def accepted_fraction(self) -> float:
        return 1.0 - self.reject_rate - self.stale_rate


def _positive(label: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{label} must be a finite number > 0")
