"""A poison record (not JSON, or JSON that fails the contract) goes to the dead-letter
topic with its reason; processing goes on and the good events are counted."""

from __future__ import annotations

import orjson
import pytest

from shared.kafka.deadletter import HEADER_ERROR, HEADER_SOURCE_TOPIC
from shared.kafka.topics import Topic, topic_name
from tests.integration.ingest.helpers import read_topics

from .conftest import assert_figures, produce, running, wait_caught_up
from .streams import make_stream

pytestmark = pytest.mark.integration


async def test_poison_records_are_dead_lettered_and_the_rest_counted(agg_settings) -> None:  # type: ignore[no-untyped-def]
    events, truth = make_stream(seed=51, shares=3_000, hours=2, too_late=0, blocks=2)
    good = events[0]
    poison = [
        (Topic.SHARES, b"m1", b"\xff\xfe not json at all"),
        (Topic.SHARES, b"m1", orjson.dumps({**{k: v for k, v in good.items() if k != "miner"},
                                             "type": "share", "difficulty": -1})),
        (Topic.BLOCKS, b"m2", orjson.dumps({"event_id": "x", "type": "block", "hash": "zz"})),
        (Topic.MINERS, b"m3", orjson.dumps([1, 2, 3])),
        (Topic.SHARES, b"m4", None),
    ]
    half = len(events) // 2
    await produce(agg_settings, events[:half], raw=poison)  # poison in the middle of the stream
    await produce(agg_settings, events[half:])
    async with running(agg_settings) as service:
        await wait_caught_up(agg_settings)
    assert service.stats.dead_lettered == {"pool.shares": 3, "pool.blocks": 1, "pool.miners": 1}
    await assert_figures(agg_settings, truth)

    letters = await read_topics(agg_settings, (Topic.DEADLETTER,))
    assert sorted(r.value for r in letters) == sorted(v or b"" for _, _, v in poison)
    reasons = {}
    for r in letters:
        headers = dict(r.headers)
        assert headers[HEADER_SOURCE_TOPIC].decode().startswith(topic_name(agg_settings, "pool."))
        reasons[r.value] = orjson.loads(headers[HEADER_ERROR])
    assert reasons[poison[0][2]]["reason"] == "undecodable"
    contract = reasons[poison[1][2]]
    assert contract["reason"] == "invalid event"
    assert {e["field"] for e in contract["errors"]} >= {"miner", "difficulty"}
    assert reasons[b""]["reason"] == "empty record"
