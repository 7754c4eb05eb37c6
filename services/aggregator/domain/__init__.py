"""Pure domain of the aggregator: no Kafka, no PostgreSQL, no clock, no I/O.

Time always comes in as integer epoch milliseconds (`*_ms`). Modules:
minutes (per-minute stats and the batch fold), table (absolute resident rows),
windows (window ranges and formulas), accumulator (running window sums),
confidence (Garwood intervals), liveness, blocks (effort and luck), dedup,
lateness, snapshot (figures as dicts) and model (all of it composed).
"""

from .accumulator import WindowAccumulator, WindowTotals
from .blocks import (
    LUCK_WINDOWS,
    BlockLedger,
    BlockRecord,
    BlockUpdate,
    Luck,
    fold_round_seconds,
)
from .confidence import (
    chi2_ppf,
    gamma_p,
    gamma_ppf,
    hashrate_interval,
    poisson_interval,
)
from .dedup import Deduplicator, EventIds, stable_hash64
from .lateness import MAX_LATENESS_MS, Lateness, classify_lateness
from .liveness import Liveness
from .minutes import (
    MINUTE_MS,
    MinuteStats,
    PoolMinuteKey,
    WorkerKey,
    WorkerMinuteKey,
    fold_shares,
    merge,
    merge_into,
    minute_start,
    roll_up_pools,
)
from .model import BlockBatchResult, PoolAggregate, ShareBatchResult
from .share import Share
from .snapshot import build_snapshot, mean_difficulty
from .table import MinuteTable
from .windows import (
    DEFAULT_MULTIPLIER,
    WINDOWS,
    WINDOWS_MS,
    efficiency,
    hashrate_hs,
    shares_per_second,
    window_range,
    window_span_ms,
)

__all__ = [
    "DEFAULT_MULTIPLIER",
    "LUCK_WINDOWS",
    "MAX_LATENESS_MS",
    "MINUTE_MS",
    "WINDOWS",
    "WINDOWS_MS",
    "BlockBatchResult",
    "BlockLedger",
    "BlockRecord",
    "BlockUpdate",
    "Deduplicator",
    "EventIds",
    "Lateness",
    "Liveness",
    "Luck",
    "MinuteStats",
    "MinuteTable",
    "PoolAggregate",
    "PoolMinuteKey",
    "Share",
    "ShareBatchResult",
    "WindowAccumulator",
    "WindowTotals",
    "WorkerKey",
    "WorkerMinuteKey",
    "build_snapshot",
    "chi2_ppf",
    "classify_lateness",
    "efficiency",
    "fold_round_seconds",
    "fold_shares",
    "gamma_p",
    "gamma_ppf",
    "hashrate_hs",
    "hashrate_interval",
    "mean_difficulty",
    "merge",
    "merge_into",
    "minute_start",
    "poisson_interval",
    "roll_up_pools",
    "shares_per_second",
    "stable_hash64",
    "window_range",
    "window_span_ms",
]
