"""The console's miners list: search, sort and pages over the hub's miner summaries."""

from __future__ import annotations

from services.ingest.domain.live import LiveHub, LiveLimits
from services.ingest.domain.live_records import MinerSummary
from services.ingest.domain.miner_list import SortField, page_miners
from tests.unit.ingest.live_samples import miner_record


class Quiet:
    def malformed(self, source: object) -> None: ...

    def coalesced(self, records: int) -> None: ...

    def untracked(self) -> None: ...


def summaries(*records: bytes) -> list[MinerSummary]:
    live = LiveHub(LiveLimits(), Quiet())  # type: ignore[arg-type]
    for record in records:
        live.accept_snapshot(record)
    return live.miners("main", fresh_after_ms=0)


MINERS = summaries(
    miner_record("bc1qalice", hashrate=3.0, workers_online=1, last_share_at_ms=300),
    miner_record("bc1qbob", hashrate=5.0, workers_online=7, last_share_at_ms=None),
    miner_record("Carol.rig", hashrate=3.0, workers_online=4, last_share_at_ms=100),
    miner_record("dave", hashrate=1.0, workers_online=4, last_share_at_ms=200),
)


def names(sort: SortField, *, descending: bool = True, q: str | None = None, limit: int = 10,
          offset: int = 0) -> list[str]:
    page = page_miners(MINERS, q=q, sort=sort, descending=descending, limit=limit, offset=offset)
    return [s.miner for s in page.miners]


def test_top_by_hashrate_first_and_ties_in_name_order_either_way() -> None:
    assert names(SortField.HASHRATE_1H) == ["bc1qbob", "Carol.rig", "bc1qalice", "dave"]
    assert names(SortField.HASHRATE_1H, descending=False) == ["dave", "Carol.rig", "bc1qalice", "bc1qbob"]


def test_sorts_by_name_workers_and_last_share() -> None:
    assert names(SortField.MINER, descending=False) == ["Carol.rig", "bc1qalice", "bc1qbob", "dave"]
    assert names(SortField.MINER) == ["dave", "bc1qbob", "bc1qalice", "Carol.rig"]
    assert names(SortField.WORKERS_ONLINE) == ["bc1qbob", "Carol.rig", "dave", "bc1qalice"]
    # A miner without a share comes last in descending order, first in ascending.
    assert names(SortField.LAST_SHARE_AT) == ["bc1qalice", "dave", "Carol.rig", "bc1qbob"]
    assert names(SortField.LAST_SHARE_AT, descending=False)[0] == "bc1qbob"


def test_other_windows_sort_by_their_own_figure() -> None:
    mixed = summaries(miner_record("a", by_window={"1m": 0, "5m": 9, "15m": 0, "1h": 1, "24h": 2}),
                      miner_record("b", by_window={"1m": 0, "5m": 1, "15m": 0, "1h": 2, "24h": 9}))
    assert [s.miner for s in page_miners(mixed, q=None, sort=SortField.HASHRATE_5M, descending=True,
                                         limit=2, offset=0).miners] == ["a", "b"]
    assert [s.miner for s in page_miners(mixed, q=None, sort=SortField.HASHRATE_24H, descending=True,
                                         limit=2, offset=0).miners] == ["b", "a"]


def test_search_is_a_case_insensitive_substring_and_total_counts_all_pages() -> None:
    page = page_miners(MINERS, q="BC1Q", sort=SortField.MINER, descending=False, limit=1, offset=1)
    assert page.total == 2 and [s.miner for s in page.miners] == ["bc1qbob"]
    assert names(SortField.MINER, q="rol.R") == ["Carol.rig"]
    assert names(SortField.MINER, q="nobody") == []


def test_pages_cover_every_miner_once() -> None:
    pages = [names(SortField.HASHRATE_1H, limit=3, offset=offset) for offset in (0, 3, 6)]
    assert pages[2] == [] and sorted(pages[0] + pages[1]) == sorted(s.miner for s in MINERS)
