"""Sample events and decode helpers shared by the event contract tests."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.events import FieldError, InvalidEvent, decode_batch, decode_event

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, fixed so ts bounds are deterministic
FIVE_MIN_MS = 300_000
MIN_TS_MS = 1_230_768_000_000  # 2009-01-01T00:00:00Z
HASH = "00000000000000000002a7c4c1e48d76c5a37902165a270156b7a8d72728a054"
DROP = object()  # marks a field to remove from the base record

SHARE: dict[str, Any] = {
    "event_id": "n1-000001",
    "type": "share",
    "ts": "2026-01-01T00:00:00Z",
    "pool": "main",
    "node": "node-1",
    "miner": "bc1qminer",
    "worker": "rig1",
    "difficulty": 65536.0,
    "status": "accepted",
}
BLOCK: dict[str, Any] = {
    "event_id": "n1-000002",
    "type": "block",
    "ts": NOW_MS,
    "node": "node-1",
    "miner": "bc1qminer",
    "worker": "rig1",
    "height": 840_000,
    "hash": HASH,
    "network_difficulty": 8.6e13,
    "reward": 3.125,
    "status": "candidate",
}
MINER: dict[str, Any] = {
    "event_id": "n1-000003",
    "type": "miner",
    "ts": NOW_MS,
    "node": "node-1",
    "miner": "bc1qminer",
    "state": "connected",
}
BASES = {"share": SHARE, "block": BLOCK, "miner": MINER}


def record(kind: str, **changes: Any) -> dict[str, Any]:
    out = dict(BASES[kind])
    for key, value in changes.items():
        if value is DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def decode(obj: Any) -> Any:
    return decode_event(orjson.dumps(obj), now_ms=NOW_MS)


def errors_of(raw: bytes, **kwargs: Any) -> list[FieldError]:
    with pytest.raises(InvalidEvent) as info:
        if kwargs.pop("batch", False):
            decode_batch(raw, now_ms=NOW_MS, **kwargs)
        else:
            decode_event(raw, now_ms=NOW_MS)
    return info.value.errors
