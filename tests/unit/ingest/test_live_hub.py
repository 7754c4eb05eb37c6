"""The live hub: who gets which record, coalescing, bounds, hostile records."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from services.ingest.domain.live import LiveHub, LiveLimits, RecordSource, StreamLimit, TooManyStreams
from services.ingest.domain.live_records import Kind, LiveRecord, MalformedRecord, parse_alert, parse_snapshot
from tests.unit.ingest.live_samples import alert_record, miner_record, pool_record, worker_record


class Observed:
    def __init__(self) -> None:
        self.malformed_by: Counter[RecordSource] = Counter()
        self.coalesced_records = 0
        self.untracked_records = 0

    def malformed(self, source: RecordSource) -> None:
        self.malformed_by[source] += 1

    def coalesced(self, records: int) -> None:
        self.coalesced_records += records

    def untracked(self) -> None:
        self.untracked_records += 1


def hub(**limits: int) -> tuple[LiveHub, Observed]:
    observed = Observed()
    return LiveHub(LiveLimits(**limits), observed), observed


def kinds(records: list[LiveRecord]) -> list[tuple[Kind, str]]:
    return [(r.kind, r.key) for r in records]


# --- subscription filtering -----------------------------------------------------------------


def test_a_new_subscription_starts_with_the_latest_pool_and_miner_figures() -> None:
    live, _ = hub()
    live.accept_snapshot(pool_record())
    live.accept_snapshot(miner_record("bc1qalice", hashrate=5e12))
    page = live.subscribe(pool="main", miner="bc1qalice", key_miner=None, client="10.0.0.1")
    first, second = page.take()
    assert (first.kind, second.kind) == (Kind.POOL, Kind.MINER)
    assert json.loads(second.data)["figures"]["hashrate"]["1h"] == 5e12


def test_a_pool_page_gets_pool_records_and_alerts_but_no_miner_or_worker_records() -> None:
    live, _ = hub()
    page = live.subscribe(pool="main", miner=None, key_miner=None, client="c")
    live.accept_snapshot(pool_record())
    live.accept_snapshot(pool_record(pool="other"))
    live.accept_snapshot(miner_record())
    live.accept_snapshot(worker_record())
    live.accept_alert(alert_record())
    assert kinds(page.take()) == [(Kind.POOL, "pool:main"), (Kind.ALERT, "alert:fp-1")]


def test_a_miner_page_gets_its_miner_and_workers_only() -> None:
    live, _ = hub()
    page = live.subscribe(pool="main", miner="bc1qalice", key_miner=None, client="c")
    live.accept_snapshot(worker_record("bc1qalice", "rig1"))
    live.accept_snapshot(worker_record("bc1qbob", "rig1"))
    live.accept_snapshot(miner_record("bc1qbob"))
    live.accept_snapshot(worker_record("bc1qalice", "rig1", pool="other"))
    live.accept_snapshot(miner_record("bc1qalice"))
    assert kinds(page.take()) == [(Kind.WORKER, "worker:main/bc1qalice/rig1"), (Kind.MINER, "miner:main/bc1qalice")]


def test_a_miner_key_sees_its_own_alerts_and_no_pool_figures() -> None:
    live, _ = hub()
    live.accept_snapshot(pool_record())
    page = live.subscribe(pool="main", miner="bc1qalice", key_miner="bc1qalice", client="c")
    assert page.take() == []  # no pool record for a miner's key, as /api/pool/stats
    live.accept_snapshot(pool_record())
    live.accept_alert(alert_record("fp-pool"))
    live.accept_alert(alert_record("fp-bob", miner="bc1qbob"))
    live.accept_alert(alert_record("fp-alice", miner="bc1qalice"))
    assert kinds(page.take()) == [(Kind.ALERT, "alert:fp-alice")]


def test_an_unsubscribed_page_gets_nothing_more_and_unsubscribing_twice_is_harmless() -> None:
    live, _ = hub()
    page = live.subscribe(pool="main", miner="bc1qalice", key_miner=None, client="c")
    live.unsubscribe(page)
    live.unsubscribe(page)
    live.accept_snapshot(worker_record())
    assert page.take() == [] and page.closed and live.open_streams == 0


# --- coalescing and bounds ---------------------------------------------------------------------


def test_a_slow_page_gets_the_latest_figures_of_each_key_in_their_first_order() -> None:
    live, observed = hub()
    page = live.subscribe(pool="main", miner="bc1qalice", key_miner=None, client="c")
    for hashrate in (1.0, 2.0, 3.0):
        live.accept_snapshot(worker_record(worker="rig1", hashrate=hashrate))
        live.accept_snapshot(worker_record(worker="rig2", hashrate=hashrate))
    records = page.take()
    assert [r.key for r in records] == ["worker:main/bc1qalice/rig1", "worker:main/bc1qalice/rig2"]
    assert all(json.loads(r.data)["figures"]["hashrate"]["1m"] == 3.0 for r in records)
    assert observed.coalesced_records == 4


def test_a_full_queue_drops_its_oldest_record_and_counts_it() -> None:
    live, observed = hub(queue_records=8)
    page = live.subscribe(pool="main", miner="bc1qalice", key_miner=None, client="c")
    for n in range(20):
        live.accept_snapshot(worker_record(worker=f"rig{n}"))
    records = page.take()
    assert [r.key.rsplit("/", 1)[1] for r in records] == [f"rig{n}" for n in range(12, 20)]
    assert observed.coalesced_records == 12
    assert page.take() == []


def test_streams_are_bounded_per_process_and_per_client_address() -> None:
    live, _ = hub(max_streams=3, max_streams_per_client=2)
    first = live.subscribe(pool="main", miner=None, key_miner=None, client="a")
    live.subscribe(pool="main", miner=None, key_miner=None, client="a")
    with pytest.raises(TooManyStreams) as per_client:
        live.subscribe(pool="main", miner=None, key_miner=None, client="a")
    assert per_client.value.limit is StreamLimit.CLIENT
    live.subscribe(pool="main", miner=None, key_miner=None, client="b")
    with pytest.raises(TooManyStreams) as per_process:
        live.subscribe(pool="main", miner=None, key_miner=None, client="c")
    assert per_process.value.limit is StreamLimit.PROCESS
    live.unsubscribe(first)
    live.subscribe(pool="main", miner=None, key_miner=None, client="a")  # a slot is free again


def test_miners_past_the_bound_are_forwarded_but_not_kept() -> None:
    live, observed = hub(max_miners=2)
    page = live.subscribe(pool="main", miner="bc1qcarol", key_miner=None, client="c")
    for miner in ("bc1qalice", "bc1qbob", "bc1qcarol"):
        live.accept_snapshot(miner_record(miner))
    live.accept_snapshot(miner_record("bc1qalice", hashrate=7.0))  # a known one is still updated
    assert sorted(s.miner for s in live.miners("main", fresh_after_ms=0)) == ["bc1qalice", "bc1qbob"]
    assert live.miner("main", "bc1qalice").hashrate("1h") == 7.0  # type: ignore[union-attr]
    assert observed.untracked_records == 1
    assert kinds(page.take()) == [(Kind.MINER, "miner:main/bc1qcarol")]


def test_stale_miners_leave_the_list_and_free_their_place() -> None:
    live, _ = hub(max_miners=1)
    live.accept_snapshot(miner_record("bc1qalice", as_of_ms=1_000))
    assert live.miners("main", fresh_after_ms=1_000) == []
    live.accept_snapshot(miner_record("bc1qbob", as_of_ms=2_000))
    assert [s.miner for s in live.miners("main", fresh_after_ms=1_000)] == ["bc1qbob"]


# --- hostile records ---------------------------------------------------------------------------


MALFORMED_SNAPSHOTS = [
    b"", b"not json", b"[1, 2]", b"{\"entity\": \"pool\"}", b"\xff\xfe",
    b"[" * 100_000,  # larger than a record may be
    b"[" * 50_000, b"[" * 257 + b"]" * 257,  # nested past what a record needs
    json.dumps({"entity": "pool", "pool": "main", "as_of_ms": "1", "figures": {}}).encode(),
    b'{"entity":"pool","pool":"main","as_of_ms":NaN,"figures":{}}',
    pool_record(pool="main<script>"), pool_record(pool=""), pool_record(pool="x" * 65),
    pool_record(as_of_ms=-1), pool_record(as_of_ms=True), pool_record(figures=[]),
    pool_record(entity="rig"),
    miner_record("bad miner"), miner_record("bc1q\u0430lice"), miner_record("x" * 129),
    miner_record(hashrate=float("inf")),
    miner_record(workers_online="2"), miner_record(online="yes"), miner_record(last_share_at_ms=1.5),
    json.dumps({"entity": "miner", "pool": "main", "miner": "m", "as_of_ms": 1, "figures": {"hashrate": 1}}).encode(),
    worker_record(worker="rig 1"), worker_record(worker="<img src=x onerror=alert(1)>"),
    b"{" + b'"a":' * 1 + b'"' + b"x" * 70_000 + b'"}',
]


@pytest.mark.parametrize("raw", MALFORMED_SNAPSHOTS)
def test_a_malformed_snapshot_record_is_counted_and_skipped(raw: bytes) -> None:
    live, observed = hub()
    page = live.subscribe(pool="main", miner="bc1qalice", key_miner=None, client="c")
    live.accept_snapshot(raw)
    assert observed.malformed_by == {RecordSource.SNAPSHOT: 1}
    assert page.take() == [] and live.miner_count == 0 and live.latest_pool("main") is None
    live.accept_snapshot(pool_record())  # the feed goes on
    assert kinds(page.take()) == [(Kind.POOL, "pool:main")]


@pytest.mark.parametrize("raw", [
    b"", b"{}", b"null", alert_record(status="pending"), alert_record(fingerprint=""),
    alert_record(fingerprint="f" * 513),
    json.dumps({"fingerprint": "f", "status": "firing", "labels": {"miner": 1}}).encode(),
    json.dumps({"fingerprint": "f", "status": "firing", "labels": []}).encode(),
])
def test_a_malformed_alert_record_is_counted_and_skipped(raw: bytes) -> None:
    live, observed = hub()
    page = live.subscribe(pool="main", miner=None, key_miner=None, client="c")
    live.accept_alert(raw)
    assert observed.malformed_by == {RecordSource.ALERT: 1}
    assert page.take() == []


def test_forwarded_records_are_one_line_of_ascii_json_whatever_the_producer_wrote() -> None:
    raw = worker_record(worker="rig1").replace(b'"catching_up"', b'"note": "a\\nb\\u2028c</script>", "catching_up"')
    record, _ = parse_snapshot(raw)
    assert "\n" not in record.data and "\r" not in record.data and record.data.isascii()
    assert json.loads(record.data)["figures"]["note"] == "a\nb\u2028c</script>"


def test_an_alert_names_its_miner_only_when_the_label_is_a_valid_miner_name() -> None:
    assert parse_alert(alert_record(miner="bc1qalice")).miner == "bc1qalice"
    assert parse_alert(alert_record(miner="bad miner")).miner is None
    with pytest.raises(MalformedRecord):
        parse_alert(b"[]")


# --- waiting and closing ------------------------------------------------------------------------


async def test_a_waiting_page_wakes_on_a_record_and_on_close() -> None:
    live, _ = hub()
    page = live.subscribe(pool="main", miner=None, key_miner=None, client="c")
    waiting = asyncio.create_task(page.wait(30))
    await asyncio.sleep(0)
    live.accept_snapshot(pool_record())
    await asyncio.wait_for(waiting, 1)
    page.take()
    waiting = asyncio.create_task(page.wait(30))
    await asyncio.sleep(0)
    live.close()
    await asyncio.wait_for(waiting, 1)
    assert page.closed
    late = live.subscribe(pool="main", miner=None, key_miner=None, client="c")
    assert late.closed  # a closing hub opens no more streams


async def test_waiting_ends_after_the_timeout_without_records() -> None:
    live, _ = hub()
    page = live.subscribe(pool="main", miner=None, key_miner=None, client="c")
    await asyncio.wait_for(page.wait(0.01), 1)
    assert page.pending == 0 and not page.closed
