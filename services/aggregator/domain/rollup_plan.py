"""Which hours and days a roll-up pass recomputes (pure).

Hourly rows are recomputed from the minute rows, daily rows from the hourly
rows, by whole UTC hours and days, so a pass is idempotent: running it again
rewrites the same values. A pass covers

- the hours the aggregator changed minute rows in since the last pass
  (`dirty`, fed from each persisted batch, late minutes included),
- the current and the previous hour (so a lost dirty mark, say after a crash,
  is repaired within the hour),
- on a "lookback" pass (at start and then every so often) the last
  `lookback_hours` hours (25 by default: the 24 hours lateness allows, plus
  the hour in progress), which repairs anything else, such as rows another
  process wrote,

and the days those hours fall in. Ranges are merged so each contiguous run of
hours (or days) is one statement.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["DAY_MS", "HOUR_MS", "RollupPlan", "floor_to", "plan_pass", "ranges"]

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS


def floor_to(ts_ms: int, step_ms: int) -> int:
    return ts_ms - ts_ms % step_ms


def ranges(starts: Iterable[int], step_ms: int) -> list[tuple[int, int]]:
    """Sorted [start, end) ranges covering the steps that begin at `starts`
    (each floored to the step), adjacent steps merged."""
    out: list[tuple[int, int]] = []
    for start in sorted({floor_to(s, step_ms) for s in starts}):
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], start + step_ms)
        else:
            out.append((start, start + step_ms))
    return out


@dataclass(frozen=True, slots=True)
class RollupPlan:
    hours: list[tuple[int, int]]  # [start_ms, end_ms) ranges of whole hours
    days: list[tuple[int, int]]  # [start_ms, end_ms) ranges of whole days

    @property
    def hour_count(self) -> int:
        return sum((end - start) // HOUR_MS for start, end in self.hours)


def plan_pass(now_ms: int, dirty_hours: Iterable[int], lookback_hours: int | None = None) -> RollupPlan:
    """The hours and days to recompute at `now_ms`; `lookback_hours` for a lookback pass.

    Hours after the current one (events may be stamped up to minutes ahead) are
    kept when dirty: their minute rows exist, so their roll-up should too."""
    current = floor_to(now_ms, HOUR_MS)
    hours = {floor_to(h, HOUR_MS) for h in dirty_hours}
    hours.update((current, current - HOUR_MS))
    if lookback_hours:
        hours.update(current - n * HOUR_MS for n in range(lookback_hours))
    hour_ranges = ranges(hours, HOUR_MS)
    return RollupPlan(hour_ranges, ranges(hours, DAY_MS))
