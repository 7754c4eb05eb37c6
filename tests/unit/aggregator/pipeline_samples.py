"""Kafka records for the pipeline's unit tests (no broker)."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import ConsumerRecord

from .samples import T0_MS

NOW_MS = T0_MS + 3_600_000  # the records' Kafka timestamps


def record(value: bytes | dict[str, Any] | None, *, topic: str = "pool.shares", partition: int = 0,
           offset: int = 0, timestamp: int = NOW_MS) -> ConsumerRecord[bytes, bytes]:
    raw = orjson.dumps(value) if isinstance(value, dict) else value
    return ConsumerRecord(topic, partition, offset, timestamp, 0, b"m1", raw, None, 2,
                          len(raw or b""), [])


def share_json(ts_ms: int, *, event_id: str, miner: str = "m1", worker: str = "w1",
               difficulty: float = 1.0, status: str = "accepted", pool: str = "main") -> dict[str, Any]:
    return {"event_id": event_id, "type": "share", "ts": ts_ms, "pool": pool, "node": "n1",
            "miner": miner, "worker": worker, "difficulty": difficulty, "status": status}
