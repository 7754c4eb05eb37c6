"""Liveness end to end, in `worker_status` (event times simulated, in the past):
- a worker that stops is offline after its own expected bound (14 of its share
  intervals, clamped to the floor and ceiling), not a fixed timeout;
- a slow worker (1 share a minute) is never flapped offline between shares,
  also after a restart (its rate is restored from the minute rows);
- a `disconnected` event with no other connection makes a worker offline at once;
  with another node still connected it does not.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared.db import connect

from .conftest import produce, running, wait_caught_up

pytestmark = pytest.mark.integration

S = 1_000
MIN = 60 * S


def _ev(kind: str, worker: str, ts: int, n: list[int], **extra: Any) -> dict[str, Any]:
    n[0] += 1
    base = {"event_id": f"{worker}-{n[0]}", "type": kind, "ts": ts, "pool": "main", "node": "n1",
            "miner": f"miner-{worker}", "worker": worker}
    if kind == "share":
        base.update(difficulty=1024.0, status="accepted")
    return {**base, **extra}


async def _status(settings) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    conn = await connect(settings)
    try:
        rows = await conn.fetch(
            "SELECT worker, connected, (extract(epoch FROM last_share_at) * 1000)::bigint AS last_ms,"
            " (extract(epoch FROM offline_after) * 1000)::bigint AS offline_ms FROM worker_status")
    finally:
        await conn.close()
    return {r["worker"]: dict(r) for r in rows}


async def test_offline_bounds_slow_workers_and_disconnects(agg_settings) -> None:  # type: ignore[no-untyped-def]
    floor, ceiling = agg_settings.liveness_floor_ms, agg_settings.liveness_ceiling_ms
    t0 = (time.time_ns() // 1_000_000 // MIN - 180) * MIN  # three hours ago
    n = [0]
    events = [_ev("miner", w, t0 - MIN, n, state="connected") for w in ("fast", "medium", "slow", "gone", "two")]
    events.append(_ev("miner", "two", t0 - MIN, n, state="connected", node="n2"))
    events += [_ev("share", "fast", t0 + i * S, n) for i in range(1_200)]  # 1/s for 20 min
    events += [_ev("share", "medium", t0 + i * 10 * S, n) for i in range(180)]  # 1 per 10 s, 30 min
    events += [_ev("share", "slow", t0 + i * MIN, n) for i in range(40)]  # 1/min
    for w in ("gone", "two"):
        events += [_ev("share", w, t0 + i * 10 * S, n) for i in range(60)]
        events.append(_ev("miner", w, t0 + 11 * MIN, n, state="disconnected"))  # from n1 only
    events.sort(key=lambda e: e["ts"])
    await produce(agg_settings, events)
    async with running(agg_settings):
        await wait_caught_up(agg_settings)
    status = await _status(agg_settings)

    fast = status["fast"]
    assert fast["offline_ms"] - fast["last_ms"] == floor  # 14 s of silence would do: the floor rules
    medium = status["medium"]
    bound = medium["offline_ms"] - medium["last_ms"]
    assert 140 * S <= bound <= 1.3 * 140 * S  # 14 intervals of 10 s, estimated conservatively
    slow = status["slow"]
    assert slow["offline_ms"] - slow["last_ms"] >= 14 * MIN  # the next share (1 min) finds it online
    assert slow["offline_ms"] - slow["last_ms"] <= ceiling
    gone = status["gone"]
    assert gone["connected"] is False and gone["offline_ms"] == t0 + 11 * MIN  # offline at once
    two = status["two"]
    assert two["connected"] is True and two["offline_ms"] > t0 + 11 * MIN  # n2 still holds it

    # Another process takes over and the slow worker keeps its rate: still not flapped.
    more = [_ev("share", "slow", t0 + i * MIN, n) for i in range(40, 50)]
    await produce(agg_settings, more)
    async with running(agg_settings) as service:
        await wait_caught_up(agg_settings)
        assert service.stats.takeovers == 3
    slow = (await _status(agg_settings))["slow"]
    assert slow["last_ms"] == t0 + 49 * MIN
    assert 14 * MIN <= slow["offline_ms"] - slow["last_ms"] <= ceiling
