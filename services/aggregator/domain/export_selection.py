"""Which miners get Prometheus series, and how long each pool has been up (pure).

Prometheus holds every series of every scrape in memory, so a pool with
100,000 miners cannot export one series per miner. The exporter exports the
top N miners by hashrate plus an allow-list (miner names, any pool); every
figure stays in PostgreSQL and on the snapshot stream regardless.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from .export_figures import MinerKey

__all__ = ["PoolUptime", "select_miners"]


def select_miners(
    ranked: Iterable[tuple[MinerKey, float]], top_n: int, allow: Collection[str] = ()
) -> list[MinerKey]:
    """The `top_n` miners by hashrate (ties: by pool, then miner name) followed by
    every allow-listed miner not among them, in (pool, miner) order.

    A miner with zero hashrate is never "top": only the allow-list exports it."""
    ranked = list(ranked)
    positive = ((key, rate) for key, rate in ranked if rate > 0)
    top = heapq.nsmallest(top_n, positive, key=lambda kv: (-kv[1], kv[0])) if top_n > 0 else []
    chosen = [key for key, _ in top]
    taken = set(chosen)
    allowed = set(allow)
    chosen += sorted(key for key, _ in ranked if key[1] in allowed and key not in taken)
    return chosen


@dataclass(slots=True)
class PoolUptime:
    """Seconds each pool has been hashing without a silence of `down_after_ms`.

    `observe(pool, active, now_ms)` with `active` = the pool had shares in its
    most recent complete minutes (the caller uses its 5m window). A pool counts
    as up from the first time it is seen active; once it has been inactive for
    `down_after_ms` its uptime restarts at 0 with the next activity. Memory of
    when the pool started is per process: after a restart uptime counts from
    the first observation (the aggregator does not know what came before)."""

    down_after_ms: int = 300_000
    _up_since_ms: dict[str, int] = field(default_factory=dict)
    _last_active_ms: dict[str, int] = field(default_factory=dict)

    def observe(self, pool: str, active: bool, now_ms: int) -> None:
        last = self._last_active_ms.get(pool)
        if active:
            if last is None or now_ms - last > self.down_after_ms:
                self._up_since_ms[pool] = now_ms
            self._last_active_ms[pool] = now_ms
        elif last is not None and now_ms - last > self.down_after_ms:
            self._up_since_ms.pop(pool, None)

    def seconds(self, pool: str, now_ms: int) -> float:
        since = self._up_since_ms.get(pool)
        last = self._last_active_ms.get(pool)
        if since is None or last is None or now_ms - last > self.down_after_ms:
            return 0.0
        return max(now_ms - since, 0) / 1000.0

    def pools(self) -> list[str]:
        return sorted(self._last_active_ms)
