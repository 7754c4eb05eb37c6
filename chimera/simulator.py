"""Where the simulated pool used to live; it is the package `chimera.simulate` now.

Kept so `from chimera.simulator import SimulatedPool` (chimera/demo.py) goes on working:
`SimulatedPool(seed=...)`, `.connect_events(ts_ms)`, `.tick(start_ms, duration_ms)`,
`.workers` and `.pool_hashrate_hs` are all there. New code imports `chimera.simulate`.
"""

from chimera.simulate import (
    HASHES_PER_DIFFICULTY,
    JsonEvent,
    PoolConfig,
    Scenario,
    SimulatedPool,
)

__all__ = ["HASHES_PER_DIFFICULTY", "JsonEvent", "PoolConfig", "Scenario", "SimulatedPool"]
