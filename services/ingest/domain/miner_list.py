"""The console's miners list: search, sort and page the live hub's miner summaries. No I/O.

Sorting every request is what keeps this simple and still fast: ~20,000 miners sort
in milliseconds (the figure is in the /api/miners route's description),
and the summaries change with every snapshot tick, so an index would be stale at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from services.ingest.domain.live_records import WINDOWS, MinerSummary

__all__ = ["MinerPage", "SortField", "page_miners"]


class SortField(StrEnum):
    HASHRATE_1H = "hashrate_1h"
    HASHRATE_24H = "hashrate_24h"
    HASHRATE_5M = "hashrate_5m"
    MINER = "miner"
    WORKERS_ONLINE = "workers_online"
    LAST_SHARE_AT = "last_share_at"


def _hashrate(window: str) -> Callable[[MinerSummary], float]:
    index = MinerSummary.HASHRATE + WINDOWS.index(window)
    return lambda s: s.figures[index]


_SORT_KEYS: Final[dict[SortField, Callable[[MinerSummary], float | int | str]]] = {
    SortField.HASHRATE_1H: _hashrate("1h"),
    SortField.HASHRATE_24H: _hashrate("24h"),
    SortField.HASHRATE_5M: _hashrate("5m"),
    SortField.MINER: lambda s: s.miner,
    SortField.WORKERS_ONLINE: lambda s: s.workers_online,
    # Never shared: first in ascending order, last in descending.
    SortField.LAST_SHARE_AT: lambda s: -1 if s.last_share_at_ms is None else s.last_share_at_ms,
}


@dataclass(frozen=True)
class MinerPage:
    total: int  # miners matching the search, all pages
    miners: list[MinerSummary]


def page_miners(summaries: Sequence[MinerSummary], *, q: str | None, sort: SortField, descending: bool,
                limit: int, offset: int) -> MinerPage:
    """Miners whose name contains `q` (case-insensitively), sorted, `limit` from `offset`.

    Ties are broken by miner name, ascending, so pages neither repeat nor skip a miner."""
    if q:
        needle = q.casefold()
        summaries = [s for s in summaries if needle in s.miner.casefold()]
    by_name = sorted(summaries, key=lambda s: s.miner)
    if sort is not SortField.MINER:
        # Stable sort: equal keys keep the name order, in either direction.
        by_name.sort(key=_SORT_KEYS[sort], reverse=descending)
    elif descending:
        by_name.reverse()
    return MinerPage(total=len(by_name), miners=by_name[offset:offset + limit])
