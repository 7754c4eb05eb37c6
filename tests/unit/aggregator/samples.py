"""Event builders for the aggregator domain tests (validated like real input)."""

from __future__ import annotations

import itertools
from typing import Any

from shared.events import BlockEvent, MinerEvent, ShareEvent

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: on a minute, hour and day boundary
MIN = 60_000
HOUR = 3_600_000
_CTX = {"now_ms": 2**62}  # no "future" check: tests place events anywhere in time
_ids = itertools.count()


def share(
    ts_ms: int,
    *,
    miner: str = "m1",
    worker: str = "w1",
    pool: str = "main",
    difficulty: float = 1.0,
    status: str = "accepted",
    actual: float | None = None,
    event_id: str | None = None,
    node: str = "n1",
) -> ShareEvent:
    data: dict[str, Any] = {
        "event_id": event_id or f"s{next(_ids)}",
        "type": "share",
        "ts": ts_ms,
        "pool": pool,
        "node": node,
        "miner": miner,
        "worker": worker,
        "difficulty": difficulty,
        "status": status,
    }
    if actual is not None:
        data["actual_difficulty"] = actual
    return ShareEvent.model_validate(data, context=_CTX)


def block(
    ts_ms: int,
    block_hash: str,
    *,
    status: str = "candidate",
    network_difficulty: float = 100.0,
    pool: str = "main",
    miner: str = "m1",
    worker: str = "w1",
    height: int = 1,
    reward: float | None = None,
    event_id: str | None = None,
) -> BlockEvent:
    data: dict[str, Any] = {
        "event_id": event_id or f"b{next(_ids)}",
        "type": "block",
        "ts": ts_ms,
        "pool": pool,
        "node": "n1",
        "miner": miner,
        "worker": worker,
        "height": height,
        "hash": block_hash,
        "network_difficulty": network_difficulty,
        "status": status,
    }
    if reward is not None:
        data["reward"] = reward
    return BlockEvent.model_validate(data, context=_CTX)


def miner_event(
    ts_ms: int,
    state: str,
    *,
    node: str = "n1",
    miner: str = "m1",
    worker: str = "w1",
    pool: str = "main",
    difficulty: float | None = None,
) -> MinerEvent:
    data: dict[str, Any] = {
        "event_id": f"c{next(_ids)}",
        "type": "miner",
        "ts": ts_ms,
        "pool": pool,
        "node": node,
        "miner": miner,
        "worker": worker,
        "state": state,
    }
    if difficulty is not None:
        data["difficulty"] = difficulty
    return MinerEvent.model_validate(data, context=_CTX)


def block_hash(n: int) -> str:
    return f"{n:064x}"
