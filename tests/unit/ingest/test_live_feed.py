"""The live feed's task ownership: a crash surfaces as a metric, stop() ends the streams and is safe twice.

The Kafka side itself is exercised against the real broker (tests/integration/ingest/test_live.py);
here the feed's loop is replaced, so nothing connects anywhere.
"""

from __future__ import annotations

import asyncio

import pytest

from services.ingest.adapters.live_feed import LiveFeed
from services.ingest.config import IngestSettings
from services.ingest.domain.live import LiveHub, LiveLimits, RecordSource


class Observed:
    def __init__(self) -> None:
        self.crashes = 0

    def malformed(self, source: RecordSource) -> None: ...

    def coalesced(self, records: int) -> None: ...

    def untracked(self) -> None: ...

    def feed_records(self, source: RecordSource, records: int) -> None: ...

    def feed_failed(self) -> None: ...

    def feed_crashed(self) -> None:
        self.crashes += 1


async def test_a_crash_is_counted_and_stop_still_ends_every_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    observed = Observed()
    hub = LiveHub(LiveLimits(), observed)
    feed = LiveFeed(IngestSettings(), hub, observed)

    async def crash() -> None:
        raise RuntimeError("a bug in the feed")

    monkeypatch.setattr(feed, "_run", crash)
    page = hub.subscribe(pool="main", miner=None, key_miner=None, client="c")
    await feed.start()
    await asyncio.sleep(0.01)
    assert observed.crashes == 1
    await feed.stop()
    await feed.stop()
    assert page.closed


async def test_stop_cancels_a_running_feed_without_counting_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    observed = Observed()
    feed = LiveFeed(IngestSettings(), LiveHub(LiveLimits(), observed), observed)
    running = asyncio.Event()

    async def forever() -> None:
        running.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(feed, "_run", forever)
    await feed.start()
    await feed.start()  # already running: one task
    await asyncio.wait_for(running.wait(), 1)
    await feed.stop()
    assert observed.crashes == 0
