"""Per-minute share statistics: the unit every other figure is built from.

A `MinuteStats` is one row of `miner_metrics` (key: pool, miner, worker,
minute) or `pool_metrics` (key: pool, minute). It holds absolute values and
merges associatively and commutatively, so folding a stream in any order or in
any batch split gives the same row, and a replay rewrites identical values.

The accepted difficulty is summed as an integer in units of 2**-80: every
difficulty of at least 2**-28 is an exact multiple of that, so the integer sum
is exact and order-free, and `difficulty_accepted` is the correctly rounded
true sum (equal to `math.fsum` of the difficulties). Summing floats directly
would make the persisted row depend on arrival order by a few ULPs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

from .share import Share

__all__ = [
    "DIFFICULTY_SCALE",
    "MINUTE_MS",
    "UNITS_PER_DIFFICULTY",
    "MinuteStats",
    "PoolMinuteKey",
    "WorkerKey",
    "WorkerMinuteKey",
    "difficulty_units",
    "fold_shares",
    "merge",
    "merge_into",
    "minute_start",
    "roll_up_pools",
]

MINUTE_MS: Final = 60_000
DIFFICULTY_SCALE: Final = 2.0**80
UNITS_PER_DIFFICULTY: Final = 2**80

WorkerKey: TypeAlias = tuple[str, str, str]  # (pool, miner, worker)
WorkerMinuteKey: TypeAlias = tuple[str, str, str, int]  # (pool, miner, worker, minute_start_ms)
PoolMinuteKey: TypeAlias = tuple[str, int]  # (pool, minute_start_ms)


def minute_start(ts_ms: int) -> int:
    """Start (epoch ms) of the UTC minute `ts_ms` falls in; floors for negatives too."""
    return ts_ms - ts_ms % MINUTE_MS


def difficulty_units(difficulty: float) -> int:
    """A difficulty as the exact integer count of 2**-80 units (see module docstring)."""
    return int(difficulty * DIFFICULTY_SCALE)


@dataclass(slots=True)
class MinuteStats:
    """Absolute share counts of one key and minute.

    Sentinels instead of None keep the hot loop and `merge` branch-free:
    difficulties are > 0 and event times are after 2009, so 0 means "none".
    """

    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    difficulty_units: int = 0  # accepted difficulty, in units of 2**-80
    best_seen: float = 0.0  # best actual_difficulty seen; 0.0 = none reported
    last_share_ms: int = 0  # newest share ts; 0 = no share (e.g. a block-only row)
    blocks_found: int = 0

    @property
    def submitted(self) -> int:
        return self.accepted + self.rejected + self.stale

    @property
    def difficulty_accepted(self) -> float:
        # int / int is correctly rounded in Python, and the divisor is a power of two.
        return self.difficulty_units / UNITS_PER_DIFFICULTY

    @property
    def best_difficulty(self) -> float | None:
        return self.best_seen or None

    @property
    def last_share_at_ms(self) -> int | None:
        return self.last_share_ms or None

    def copy(self) -> MinuteStats:
        return MinuteStats(
            self.accepted, self.rejected, self.stale, self.difficulty_units,
            self.best_seen, self.last_share_ms, self.blocks_found,
        )

    def as_row(self) -> dict[str, object]:
        """The persisted columns, as absolute values."""
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "stale": self.stale,
            "difficulty_accepted": self.difficulty_accepted,
            "best_difficulty": self.best_difficulty,
            "last_share_at_ms": self.last_share_at_ms,
            "blocks_found": self.blocks_found,
        }


def merge_into(target: MinuteStats, delta: MinuteStats) -> MinuteStats:
    """Add `delta` into `target` in place (sums add, best and last take the max)."""
    target.accepted += delta.accepted
    target.rejected += delta.rejected
    target.stale += delta.stale
    target.difficulty_units += delta.difficulty_units
    target.best_seen = max(target.best_seen, delta.best_seen)
    target.last_share_ms = max(target.last_share_ms, delta.last_share_ms)
    target.blocks_found += delta.blocks_found
    return target


def merge(a: MinuteStats, b: MinuteStats) -> MinuteStats:
    """A new MinuteStats equal to a + b; associative and commutative."""
    return merge_into(a.copy(), b)


def fold_shares(
    shares: Iterable[Share],
    into: dict[WorkerMinuteKey, MinuteStats] | None = None,
) -> dict[WorkerMinuteKey, MinuteStats]:
    """Fold share events into per (pool, miner, worker, minute) deltas.

    The hot path (50,000+ events/s in one process): plain attribute reads, one
    dict lookup per event, no model construction. Deduplication and lateness
    are the caller's (they need state); this only counts what it is given.
    """
    out: dict[WorkerMinuteKey, MinuteStats] = {} if into is None else into
    get = out.get
    scale = DIFFICULTY_SCALE
    for share in shares:
        ts = share.ts_ms
        key = (share.pool, share.miner, share.worker, ts - ts % 60_000)
        stats = get(key)
        if stats is None:
            stats = out[key] = MinuteStats()
        status = share.status
        if status == "accepted":
            stats.accepted += 1
            stats.difficulty_units += int(share.difficulty * scale)
        elif status == "rejected":
            stats.rejected += 1
        else:
            stats.stale += 1
        best = share.actual_difficulty
        if best is not None and best > stats.best_seen:
            stats.best_seen = best
        if ts > stats.last_share_ms:  # noqa: PLR1730 - a compare is half the cost of a max() call here
            stats.last_share_ms = ts
    return out


def roll_up_pools(
    deltas: Mapping[WorkerMinuteKey, MinuteStats],
    into: dict[PoolMinuteKey, MinuteStats] | None = None,
) -> dict[PoolMinuteKey, MinuteStats]:
    """Per (pool, minute) totals of per-worker deltas (one merge per worker-minute, not per event)."""
    out: dict[PoolMinuteKey, MinuteStats] = {} if into is None else into
    for (pool, _miner, _worker, minute), stats in deltas.items():
        key = (pool, minute)
        total = out.get(key)
        if total is None:
            out[key] = stats.copy()
        else:
            merge_into(total, stats)
    return out
