"""SQL that sums the contract's windows over minute rows in one pass (one FILTER per
window), for every reader of `pool_metrics` / `miner_metrics` (the stats API, the
aggregator's pool snapshots): one definition of "the complete minutes of a window"."""

from __future__ import annotations

from typing import Final

from shared.hashrate import WINDOWS_MS

__all__ = ["WINDOW_NAMES", "window_sums_sql"]

WINDOW_NAMES: Final = tuple(WINDOWS_MS)


def window_sums_sql(first_param: int, upper_bound: str = "") -> str:
    """Select expressions, per window i (in WINDOW_NAMES order): accepted difficulty d{i},
    counts a{i} r{i} s{i}; window i starts at parameter $(first_param + i). `upper_bound`
    (e.g. " AND ts < $3") is added to every filter when the WHERE clause has none."""
    exprs = []
    for i in range(len(WINDOW_NAMES)):
        cond = f"ts >= ${first_param + i}{upper_bound}"
        exprs.append(
            f"coalesce(sum(difficulty_accepted) FILTER (WHERE {cond}), 0)::float8 AS d{i},"
            f" coalesce(sum(accepted) FILTER (WHERE {cond}), 0)::bigint AS a{i},"
            f" coalesce(sum(rejected) FILTER (WHERE {cond}), 0)::bigint AS r{i},"
            f" coalesce(sum(stale) FILTER (WHERE {cond}), 0)::bigint AS s{i}"
        )
    return ",\n       ".join(exprs)
