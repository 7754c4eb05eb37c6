"""Derived block figures, refreshed outside the exactly-once path.

Round effort needs the whole pool's accepted difficulty, which comes from
every input partition (a pool's miners are spread over them), so it is
computed in SQL from `pool_metrics` (`chimera_refresh_block_effort`, migration
0006) rather than in one partition's model. It runs right after a batch that
wrote blocks (`poke`) and every `interval_s` for the blocks of the last
lateness window, so late shares and other members' partitions converge the
figure. Effort is derived data: recomputing it is idempotent, and a failed
pass is simply retried at the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import asyncpg

from shared.background import cancel_and_wait, spawn

from .db import db_connection

__all__ = ["EffortRefresher"]

log = logging.getLogger(__name__)


class EffortRefresher:
    def __init__(self, pool: asyncpg.Pool, *, interval_s: float, lookback_ms: int,
                 timeout_s: float = 30.0) -> None:
        self._pool = pool
        self._interval_s = interval_s
        self._lookback_ms = lookback_ms
        self._timeout_s = timeout_s
        self._wake = asyncio.Event()
        self._poked_ms: int | None = None
        self._task: asyncio.Task[None] | None = None
        self.passes = 0
        self.failures = 0
        self.changed = 0  # blocks whose effort changed, in all

    async def start(self) -> None:
        if self._task is None:
            self._task = spawn(self._loop(), "aggregator-effort")

    async def stop(self) -> None:
        """Idempotent; cancels a pass in progress."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def poke(self, found_ms: int) -> None:
        """Run a pass soon, reaching back to `found_ms` at least (a batch wrote a block
        found then: a replay or backfill may be older than the lookback)."""
        self._poked_ms = found_ms if self._poked_ms is None else min(self._poked_ms, found_ms)
        self._wake.set()

    async def refresh(self, since: datetime | None = None) -> int:
        """One pass over the blocks found since `since` (default: the lookback); rows changed."""
        since = since or datetime.now(UTC) - timedelta(milliseconds=self._lookback_ms)
        async with db_connection(self._pool, "refreshing block effort", timeout_s=self._timeout_s) as conn:
            changed = await conn.fetchval("SELECT chimera_refresh_block_effort($1)", since)
        return int(changed or 0)

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._wake.wait()
            self._wake.clear()
            since = datetime.now(UTC) - timedelta(milliseconds=self._lookback_ms)
            if self._poked_ms is not None:
                since = min(since, datetime.fromtimestamp(self._poked_ms / 1000, UTC))
            poked, self._poked_ms = self._poked_ms, None
            try:
                self.changed += await self.refresh(since)
                self.passes += 1
            except Exception as exc:  # noqa: BLE001 - derived data: the next pass retries
                if poked is not None:  # the next pass reaches as far back
                    self._poked_ms = poked if self._poked_ms is None else min(self._poked_ms, poked)
                self.failures += 1
                log.warning("block effort refresh failed (retrying): %s", exc)
