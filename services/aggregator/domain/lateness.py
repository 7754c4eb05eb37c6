"""How late an event is, relative to the event-time watermark (contract section 2).

- "on_time": in the watermark's minute or newer: it only touches the running
  minute, which no window or persisted row has taken as final yet.
- "late": in an older minute, but no more than `max_lateness_ms` older than the
  watermark: counted into its own minute (the persisted row is rewritten and
  the windows covering that minute change).
- "too_late": older than that: dropped, and counted by the caller in a metric.

The watermark is the newest event time seen (or one the caller supplies). It
is judged event by event in stream order, so the outcome does not depend on
how the stream happens to be cut into batches.
"""

from __future__ import annotations

from typing import Final, Literal

from .minutes import MINUTE_MS

__all__ = ["MAX_LATENESS_MS", "Lateness", "classify_lateness"]

MAX_LATENESS_MS: Final = 24 * 3_600_000
Lateness = Literal["on_time", "late", "too_late"]


def classify_lateness(
    ts_ms: int, watermark_ms: int, max_lateness_ms: int = MAX_LATENESS_MS
) -> Lateness:
    if ts_ms < watermark_ms - max_lateness_ms:
        return "too_late"
    if ts_ms < watermark_ms - watermark_ms % MINUTE_MS:
        return "late"
    return "on_time"
