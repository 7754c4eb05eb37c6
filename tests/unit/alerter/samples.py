"""Rules and records for the alerter's unit tests."""

from __future__ import annotations

from typing import Any

from services.alerter.domain.records import Record
from services.alerter.domain.rules import Rule

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN = 60_000
WINDOWS = ("1m", "5m", "15m", "1h", "24h")


def rule(**fields: Any) -> Rule:
    values: dict[str, Any] = {"id": 1, "name": "test rule", "metric": "worker_online", "operator": "==",
                              "threshold": 0.0}
    values.update(fields)
    return Rule(**values)


def by_window(value: float | None) -> dict[str, float | None]:
    return dict.fromkeys(WINDOWS, value)


def worker(at_ms: int, *, miner: str = "m1", name: str = "w1", pool: str = "main", online: bool | None = True,
           hashrate: float = 100.0, lower: float | None = None, upper: float | None = None,
           **figures: Any) -> Record:
    values: dict[str, Any] = {
        "online": online, "hashrate": by_window(hashrate),
        "hashrate_lower": by_window(hashrate * 0.9 if lower is None else lower),
        "hashrate_upper": by_window(hashrate * 1.1 if upper is None else upper),
        "efficiency": by_window(0.99), "shares_per_second": by_window(1.0), "last_share_at_ms": at_ms - 30_000,
    }
    values.update(figures)
    return Record(f"worker:{pool}/{miner}/{name}", "worker", {"pool": pool, "miner": miner, "worker": name},
                  at_ms, values)


def pool(at_ms: int, *, name: str = "main", **figures: Any) -> Record:
    return Record(f"pool:{name}", "pool", {"pool": name}, at_ms, figures)
