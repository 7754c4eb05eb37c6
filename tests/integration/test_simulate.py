"""The simulator's sinks for real: the ingest app in process, a scripted loopback server, the broker.

- HttpSink posts batches to the real `POST /v1/events` (202) and samples to the metrics API,
  and the events land in the contract's topics;
- a loopback server answering 503 (Retry-After: 1) or 429 once makes it wait and resend the
  very same event_ids;
- KafkaSink writes `pool.shares` / `pool.blocks` / `pool.miners` keyed by miner;
- `chimera simulate --speed fast` end to end, with its ground truth file.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson
import pytest
from aiokafka import ConsumerRecord

from chimera.cli import build_parser
from chimera.simulate import Fast, HttpSink, KafkaSink, PoolConfig, SimulatedPool, run
from chimera.simulate.command import simulate
from chimera.simulate.records import iso_ms
from shared.events import TOPIC_BY_TYPE
from shared.kafka.topics import ensure_topics, topic_name, topic_specs
from shared.settings import ServiceSettings
from tests.conftest import Endpoints, own_schema, unique_name
from tests.integration.ingest.conftest import Api, make_settings, serve
from tests.integration.ingest.helpers import read_topics
from tests.integration.notifier.receivers import HttpReceiver, Reply
from tests.integration.test_kafka import delete_topics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MINUTE_MS = 60_000


@pytest.fixture(scope="module")
async def api(endpoints: Endpoints) -> AsyncIterator[Api]:
    """One ingest app for the module, on its own topics and schema."""
    async with own_schema(endpoints) as schema:
        async for running in serve(make_settings(endpoints, unique_name("t") + ".", schema)):
            yield running


def _by_id(records: Sequence[ConsumerRecord[bytes, bytes]]) -> dict[str, dict[str, object]]:
    """Records read back, by event_id, with their topic and key beside the event's fields."""
    out: dict[str, dict[str, object]] = {}
    for record in records:
        value = orjson.loads(record.value or b"{}")
        out[value["event_id"]] = {"topic": record.topic, "key": record.key, **value}
    return out


async def test_http_sink_posts_batches_that_the_ingest_app_accepts_and_stores(api: Api) -> None:
    key = await api.key("ingest")
    pool = SimulatedPool(PoolConfig(miners=4, run_id=unique_name("http-")), seed=1)
    async with HttpSink(api.base_url, key, max_batch_events=50) as sink:
        report = await run(pool, sink, Fast(tick_ms=MINUTE_MS), span_ms=3 * MINUTE_MS)
    sent = sum(report.events.values())
    assert sent > 200 and sink.stats.events == sent
    samples = report.metrics + report.performance
    assert samples > 0 and sink.stats.metrics + sink.stats.performance == samples
    assert sink.stats.statuses == Counter({202: sink.stats.requests}) and sink.stats.retries == 0
    assert sink.stats.requests - samples >= sent / 50  # one request per sample, batches of at most 50
    stored = {i: r for i, r in _by_id(await read_topics(api.settings)).items()
              if i.startswith(pool.config.run_id or "-")}
    assert len(stored) == sent
    assert Counter(str(r["type"]) for r in stored.values()) == report.events


async def test_a_503_with_retry_after_is_waited_out_and_the_same_event_ids_sent_again() -> None:
    events = SimulatedPool(PoolConfig(miners=2), seed=2).events(1_767_225_600_000, 1_767_225_630_000)
    async with HttpReceiver() as server:
        server.script("/v1/events", Reply(503, headers={"Retry-After": "1"}, json={"error": "Kafka", "details": []}),
                      Reply(202, json={"accepted": len(events)}))
        server.script("/api/metrics", Reply(429, headers={"Retry-After": "1"}, json={"error": "slow", "details": []}),
                      Reply(202, json={"accepted": 1, "id": "x"}))
        async with HttpSink(server.url(), "k") as sink:
            await sink.send_events(events)
            await sink.send_metrics(SimulatedPool(PoolConfig(miners=2)).advance(0, MINUTE_MS).metrics[:1])
    first, second = server.on("/v1/events")
    ids = [e["event_id"] for e in events]
    assert [e["event_id"] for e in first.json] == [e["event_id"] for e in second.json] == ids
    assert second.received_at - first.received_at >= 0.95  # Retry-After honoured
    assert first.headers["Authorization"] == "Bearer k"
    tried, retried = server.on("/api/metrics")
    assert tried.body == retried.body and retried.received_at - tried.received_at >= 0.95
    assert sink.stats.retries == 2 and sink.stats.events == len(events)


async def test_kafka_sink_writes_the_contract_topics_keyed_by_miner(kafka_settings: ServiceSettings,
                                                                   tmp_path: Path) -> None:
    await ensure_topics(kafka_settings)
    try:
        pool = SimulatedPool(PoolConfig(miners=4, block_every_ms=20_000), seed=3)
        async with KafkaSink(kafka_settings) as sink:
            report = await run(pool, sink, Fast(tick_ms=MINUTE_MS), span_ms=2 * MINUTE_MS)
        assert {"share", "block", "miner"} <= set(report.events)
        assert sink.stats.events == sum(report.events.values())
        # The command's --kafka takes its settings from the environment (here: this test's).
        truth = tmp_path / "kafka.ndjson"
        args = build_parser().parse_args(["simulate", "--kafka", "--no-metrics", "--speed", "fast", "--span", "1m",
                                          "--miners", "3", "--seed", "5", "--truth", str(truth)])
        assert await simulate(args, settings=lambda: kafka_settings, out=io.StringIO()) == 0
        by_command = [orjson.loads(line) for line in truth.read_bytes().splitlines()]
        commanded = {r["event"]["event_id"] for r in by_command if r["kind"] == "event"}
        assert commanded and not [r for r in by_command if r["kind"] == "metric"]
        stored = _by_id(await read_topics(kafka_settings))
        assert len(stored) == sum(report.events.values()) + len(commanded)
        assert commanded <= stored.keys()
        for record in stored.values():
            assert record["topic"] == topic_name(kafka_settings, TOPIC_BY_TYPE[str(record["type"])])
            assert record["key"] == str(record["miner"]).encode()
    finally:
        await delete_topics(kafka_settings, [spec.name for spec in topic_specs(kafka_settings)])


async def test_chimera_simulate_fast_end_to_end_with_its_ground_truth(api: Api, tmp_path: Path) -> None:
    key = await api.key("ingest")
    truth_path = tmp_path / "truth.ndjson"
    args = build_parser().parse_args([
        "simulate", "--url", api.base_url, "--key", key, "--speed", "fast", "--span", "5m", "--miners", "5",
        "--seed", "4", "--scenario", str(ROOT / "deploy" / "scenarios" / "demo.yaml"),
        "--truth", str(truth_path)])
    out = io.StringIO()
    started = time.time() * 1000
    assert await simulate(args, out=out) == 0, out.getvalue()
    assert "ground truth: " in out.getvalue()
    records = [orjson.loads(line) for line in truth_path.read_bytes().splitlines()]
    kinds = Counter(r["kind"] for r in records)
    assert {"run", "worker", "scheduled", "state", "event", "metric", "performance"} <= set(kinds)
    run_record = records[0]
    assert run_record["kind"] == "run" and run_record["seed"] == 4
    assert started - 5 * MINUTE_MS - 2_000 < run_record["start_ms"] < started - 5 * MINUTE_MS + 2_000
    scheduled = [(r["at_ms"], r["miner"], r["worker"], r["action"]) for r in records if r["kind"] == "scheduled"]
    assert scheduled == [(2 * MINUTE_MS, "m1", "w1", "offline"), (3 * MINUTE_MS, "m3", None, "degrade"),
                         (17 * MINUTE_MS, "m1", "w1", "online")]
    offline = [r for r in records if r["kind"] == "state" and r["reason"] == "offline"]
    assert [(r["miner"], r["worker"], r["ts_ms"] - run_record["start_ms"]) for r in offline] == [
        ("m1", "w1", 2 * MINUTE_MS)]
    sent = {r["event"]["event_id"]: r["event"] for r in records if r["kind"] == "event"}
    stored = {i: r for i, r in _by_id(await read_topics(api.settings)).items() if i in sent}
    assert stored.keys() == sent.keys()
    assert not any(e["miner"] == "m1" and e["worker"] == "w1" and e["type"] == "share"
                   and e["ts"] >= iso_ms(run_record["start_ms"] + 2 * MINUTE_MS) for e in sent.values())
