"""Snapshot and alert records as the aggregator and the alerter publish them (docs/aggregator.md,
docs/alerter.md), for the live hub's tests."""

from __future__ import annotations

import json
from typing import Any

WINDOWS = ("1m", "5m", "15m", "1h", "24h")


def _by_window(value: float | None) -> dict[str, float | None]:
    return dict.fromkeys(WINDOWS, value)


def figures(hashrate: float = 1e12, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "as_of_ms": 1_767_225_600_000,
        "hashrate": _by_window(hashrate), "hashrate_lower": _by_window(hashrate * 0.9),
        "hashrate_upper": _by_window(hashrate * 1.1), "shares": _by_window(10), "submitted": _by_window(11),
        "shares_per_second": _by_window(0.1), "efficiency": _by_window(0.99), "online": True,
        "last_share_at_ms": 1_767_225_599_000, "catching_up": False,
    }
    values.update(changes)
    return values


def pool_record(pool: str = "main", **changes: Any) -> bytes:
    record = {"entity": "pool", "pool": pool, "as_of_ms": 1_767_225_600_000,
              "figures": figures(online=None, last_share_at_ms=None, active_miners=2, active_workers=3)}
    return json.dumps({**record, **changes}).encode()


def miner_record(miner: str = "bc1qalice", pool: str = "main", *, hashrate: float = 1e12,
                 as_of_ms: int = 1_767_225_600_000, by_window: dict[str, float] | None = None,
                 **figure_changes: Any) -> bytes:
    """`by_window`: a hashrate of its own per window (else `hashrate` in every window)."""
    values = figures(hashrate, **{"workers_online": 2, "workers_total": 3, **figure_changes})
    if by_window is not None:
        values["hashrate"] = by_window
    record = {"entity": "miner", "pool": pool, "miner": miner, "as_of_ms": as_of_ms, "figures": values}
    return json.dumps(record).encode()


def worker_record(miner: str = "bc1qalice", worker: str = "rig1", pool: str = "main", **changes: Any) -> bytes:
    record = {"entity": "worker", "pool": pool, "miner": miner, "worker": worker,
              "as_of_ms": 1_767_225_600_000, "figures": figures(**changes)}
    return json.dumps(record).encode()


def alert_record(fingerprint: str = "fp-1", *, miner: str | None = None, status: str = "firing",
                 name: str = "MinerDown") -> bytes:
    labels = {"alertname": name, "severity": "warning"}
    if miner is not None:
        labels["miner"] = miner
    record = {"fingerprint": fingerprint, "status": status, "starts_at": "2026-01-01T00:00:00Z",
              "fired_at": "2026-01-01T00:01:00Z", "ends_at": None, "labels": labels,
              "annotations": {"summary": "down"}, "name": name, "severity": "warning", "value": 0.0,
              "threshold": 1.0, "rule_id": 1, "alert_id": 1, "reason": None}
    return json.dumps(record).encode()
