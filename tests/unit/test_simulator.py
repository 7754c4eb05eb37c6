"""`chimera.simulator`, the old home of the simulated pool: what chimera/demo.py calls still works."""

from __future__ import annotations

import orjson
import pytest

from chimera import simulate
from chimera.simulator import HASHES_PER_DIFFICULTY, SimulatedPool
from shared.events import decode_batch

pytestmark = pytest.mark.unit

START_MS = 1_767_225_600_000


def test_the_old_module_is_the_new_package() -> None:
    assert SimulatedPool is simulate.SimulatedPool
    assert HASHES_PER_DIFFICULTY == 2**32


def test_the_demo_calls_connect_then_tick_by_tick() -> None:
    pool = SimulatedPool(seed=7)
    connected = pool.connect_events(START_MS)
    assert {(e["miner"], e["worker"]) for e in connected} == {(w.miner, w.worker) for w in pool.workers}
    assert all(e["type"] == "miner" and e["state"] == "connected" for e in connected)
    ticks = [pool.tick(START_MS + k * 1000, 1000) for k in range(30)]
    again = SimulatedPool(seed=7)
    events = connected + [e for tick in ticks for e in tick]
    assert events == again.events(START_MS, START_MS + 30_000)
    decoded = decode_batch(orjson.dumps(events), max_events=len(events), now_ms=START_MS + 30_000)
    assert len(decoded) == len(events) and sum(e.type == "share" for e in decoded) > 100
    assert pool.pool_hashrate_hs == pytest.approx(sum(w.hashrate_hs for w in pool.workers))
