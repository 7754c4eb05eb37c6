"""The notifier end to end on the real broker and database, delivering to a real loopback receiver:
grouping, repeats, resolved notices, silences, inhibition, retries, dead letters, miner channels."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from services.notifier.config import NotifierSettings
from services.notifier.domain.messages import SIGNATURE_HEADER, webhook_signature
from shared.db.pool import create_pool
from shared.kafka.options import client_options
from shared.kafka.topics import Topic, topic_name
from tests.conftest import Endpoints
from tests.integration.notifier.receivers import HttpReceiver, Reply
from tests.integration.notifier.service import (
    add_channel,
    alert_record,
    attempts,
    notifier_settings,
    publish,
    running,
)
from tests.waiting import until

pytestmark = pytest.mark.integration

FAST = {"group_wait_ms": 500, "group_interval_ms": 1_000, "repeat_interval_ms": 3_600_000}
# For tests that claim records published together go out in one message: the records are keyed
# apart, so they reach a group over as many fetches as partitions, and a slow machine has spread
# fifty over more than FAST's 1 s group_interval (a first resolved notice with part of them).
GATHERED = {"group_wait_ms": 2_000, "group_interval_ms": 3_000, "repeat_interval_ms": 3_600_000}


@pytest.fixture
async def settings(endpoints: Endpoints, topic_prefix: str, db_schema: str, tmp_path: Path) -> NotifierSettings:
    return await notifier_settings(endpoints, topic_prefix, db_schema, tmp_path)


@pytest.fixture
async def pool(settings: NotifierSettings) -> AsyncIterator[asyncpg.Pool]:
    made = await create_pool(settings)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    async with HttpReceiver() as made:
        yield made


async def test_fifty_alerts_in_one_group_make_one_message_then_one_resolved_notice(
        settings: NotifierSettings, pool: asyncpg.Pool, receiver: HttpReceiver) -> None:
    await add_channel(pool, settings, "ops", "webhook", {"url": receiver.url("/hook"), "hmac_secret": "s3cret"},
                      group_by=("pool",), **GATHERED)
    await add_channel(pool, settings, "short", "webhook", {"url": receiver.url("/short"), "max_alerts": 10},
                      group_by=("pool",), send_resolved=False, **GATHERED)
    fired = [alert_record(f"fp{i:02d}", labels={"pool": "main", "worker": f"w{i}"}, alert_id=i + 1)
             for i in range(50)]
    async with running(settings) as service:
        await publish(settings, *fired)
        await receiver.wait_for(2, timeout_s=20)
        # A group_interval and more: nothing new, nothing sent. The resolved records below are then
        # published just after a tick of the group, so they have most of an interval to gather.
        await asyncio.sleep(3.5)
        assert len(receiver.requests) == 2
        [first] = receiver.on("/hook")
        [short] = receiver.on("/short")
        assert short.json["truncatedAlerts"] == 40 and len(short.json["alerts"]) == 10
        assert [a["fingerprint"] for a in short.json["alerts"]] == [f"fp{i:02d}" for i in range(10)]
        body = first.json
        assert first.headers[SIGNATURE_HEADER] == webhook_signature(b"s3cret", first.body)
        assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "ops"
        assert body["groupLabels"] == {"pool": "main"}
        assert body["commonLabels"] == {"alertname": "worker offline", "pool": "main", "severity": "warning"}
        assert body["truncatedAlerts"] == 0
        assert sorted(a["fingerprint"] for a in body["alerts"]) == [f"fp{i:02d}" for i in range(50)]
        assert {a["status"] for a in body["alerts"]} == {"firing"}

        await publish(settings, *[alert_record(r["fingerprint"], "resolved", labels=r["labels"]) for r in fired])
        second = (await receiver.wait_for(3, timeout_s=20))[2].json
        assert second["status"] == "resolved"
        assert len(second["alerts"]) == 50 and {a["status"] for a in second["alerts"]} == {"resolved"}
        assert all(a["endsAt"] != "0001-01-01T00:00:00Z" for a in second["alerts"])
        await asyncio.sleep(3.5)  # a group_interval and more: "short" does not send resolved notices
        assert len(receiver.requests) == 3
        exposition = await _scrape(service.http.port)
    log = await attempts(pool)
    assert [(a["status"], a["attempt"]) for a in log] == [("sent", 1)] * 3
    deliveries = await pool.fetch("SELECT d.idempotency_key, d.alert_ids FROM notification_deliveries d"
                                  " JOIN alert_channels c ON c.id = d.channel_id WHERE c.name = 'ops' ORDER BY d.id")
    assert [d["idempotency_key"].rsplit(":", 1)[1] for d in deliveries] == ["1", "2"]
    assert sorted(deliveries[0]["alert_ids"]) == list(range(1, 51))
    assert 'chimera_notifier_notifications_total{channel_type="webhook",outcome="sent",reason="ok"} 3.0' in exposition
    assert 'chimera_notifier_records_total{status="routed"} 100.0' in exposition
    assert "chimera_notifier_delivery_latency_seconds_count" in exposition


async def _scrape(port: int) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


async def test_a_firing_group_is_told_again_after_repeat_interval(
        settings: NotifierSettings, pool: asyncpg.Pool, receiver: HttpReceiver) -> None:
    await add_channel(pool, settings, "ops", "webhook", {"url": receiver.url("/hook")},
                      group_wait_ms=200, group_interval_ms=300, repeat_interval_ms=1_500)
    async with running(settings):
        await publish(settings, alert_record("fp1"))
        got = await receiver.wait_for(2, timeout_s=20)
        gap = got[1].received_at - got[0].received_at
        assert 1.4 <= gap <= 3.0, gap
        assert got[0].json["alerts"] == got[1].json["alerts"]


async def test_routing_by_matchers_severity_and_miner(
        settings: NotifierSettings, pool: asyncpg.Pool, receiver: HttpReceiver) -> None:
    await add_channel(pool, settings, "critical-only", "webhook", {"url": receiver.url("/crit")},
                      min_severity="critical", **FAST)
    await add_channel(pool, settings, "not-test-pool", "webhook", {"url": receiver.url("/regex")},
                      label_matchers=[{"name": "pool", "op": "!~", "value": "test.*"}], **FAST)
    await add_channel(pool, settings, "alice", "webhook", {"url": receiver.url("/alice")}, miner="alice", **FAST)
    async with running(settings):
        await publish(settings,
                      alert_record("a", labels={"pool": "main", "miner": "alice"}, severity="warning"),
                      alert_record("b", labels={"pool": "testnet", "miner": "bob"}, severity="critical"),
                      alert_record("c", labels={"pool": "main", "miner": "bob"}, severity="info"))
        await until(lambda: len(receiver.requests) >= 3, what="three notifications")
        await asyncio.sleep(1.0)
    by_path = {path: sorted(a["fingerprint"] for r in receiver.on(path) for a in r.json["alerts"])
               for path in ("/crit", "/regex", "/alice")}
    assert by_path == {"/crit": ["b"], "/regex": ["a", "c"], "/alice": ["a"]}


async def test_a_silenced_alert_is_sent_when_the_silence_ends(
        settings: NotifierSettings, pool: asyncpg.Pool, receiver: HttpReceiver) -> None:
    await add_channel(pool, settings, "ops", "webhook", {"url": receiver.url("/hook")}, **FAST)
    async with running(settings) as service:
        now = datetime.now(UTC)
        await pool.execute("INSERT INTO silences (matchers, starts_at, ends_at, created_by) VALUES ($1, $2, $3, 'test')",
                           [{"name": "worker", "op": "=~", "value": "w[12]"}], now - timedelta(minutes=1),
                           now + timedelta(seconds=6))
        await until(lambda: bool(service.directory.silences), what="the silence read back")
        await publish(settings, alert_record("loud", labels={"worker": "w9"}),
                      alert_record("quiet", labels={"worker": "w1"}))
        first = (await receiver.wait_for(1, timeout_s=20))[0].json
        assert [a["fingerprint"] for a in first["alerts"]] == ["loud"]
        muted = service.telemetry.registry.get_sample_value("chimera_notifier_muted_alerts_total",
                                                            {"why": "silenced"})
        assert muted is not None and muted >= 1
        second = (await receiver.wait_for(2, timeout_s=20))[1].json
        assert sorted(a["fingerprint"] for a in second["alerts"]) == ["loud", "quiet"]


async def test_inhibition_mutes_targets_while_the_source_fires(
        endpoints: Endpoints, topic_prefix: str, db_schema: str, tmp_path: Path, receiver: HttpReceiver) -> None:
    settings = await notifier_settings(endpoints, topic_prefix, db_schema, tmp_path,
                                       notifier_inhibit_rules_file=Path("deploy/notifier/inhibit_rules.yaml"))
    pool = await create_pool(settings)
    try:
        await add_channel(pool, settings, "ops", "webhook", {"url": receiver.url("/hook")}, **FAST)
        async with running(settings) as service:
            await publish(settings, alert_record("pool", labels={"pool": "main"}, name="pool hashrate drop",
                                                 severity="critical"))
            await receiver.wait_for(1, timeout_s=20)
            # the source is noted and read back (NOTIFIER_RELOAD_S)
            await until(lambda: bool(service.directory.firing), what="the source read back")
            await publish(settings, alert_record("w1", labels={"pool": "main", "worker": "w1"}),
                          alert_record("other", labels={"pool": "side", "worker": "w1"}))
            got = await receiver.wait_for(2, timeout_s=20)
            await asyncio.sleep(1.5)
            told = sorted(a["fingerprint"] for r in receiver.requests[1:] for a in r.json["alerts"]
                          if a["status"] == "firing")
            assert "w1" not in told and "other" in told, told
            await publish(settings, alert_record("pool", "resolved", labels={"pool": "main"},
                                                 name="pool hashrate drop", severity="critical"))
            await until(lambda: any(
                a["fingerprint"] == "w1" for r in receiver.requests for a in r.json["alerts"]),
                what="the target sent once its source resolved")
            del got
    finally:
        await pool.close()


async def test_retries_503_twice_then_delivers_once(
        settings: NotifierSettings, pool: asyncpg.Pool, receiver: HttpReceiver) -> None:
    receiver.script("/hook", Reply(503), Reply(503, headers={"Retry-After": "0"}), Reply(200))
    await add_channel(pool, settings, "ops", "webhook", {"url": receiver.url("/hook")}, **FAST)
    async with running(settings):
        await publish(settings, alert_record("fp1"))
        await receiver.wait_for(3, timeout_s=20)
        log = await until(lambda: _log_when(pool, 3), what="three attempts logged")
        await asyncio.sleep(1.0)
    assert len(receiver.requests) == 3
    assert [(a["attempt"], a["status"], a["response_code"]) for a in log] == [
        (1, "failed", 503), (2, "failed", 503), (3, "sent", 200)]
    assert {a["delivery_status"] for a in log} == {"sent"}


async def _log_when(pool: asyncpg.Pool, count: int) -> list[dict[str, object]] | None:
    log = await attempts(pool)
    return log if len(log) >= count and log[-1]["delivery_status"] in ("sent", "dead") else None


async def test_a_400_is_not_retried_and_is_dead_lettered(
        settings: NotifierSettings, pool: asyncpg.Pool, receiver: HttpReceiver) -> None:
    receiver.script("/hook", Reply(400, body="bad payload"))
    await add_channel(pool, settings, "ops", "webhook", {"url": receiver.url("/hook")}, **FAST)
    consumer = AIOKafkaConsumer(topic_name(settings, Topic.NOTIFICATIONS_DEAD), auto_offset_reset="earliest",
                                **client_options(settings))
    await consumer.start()
    try:
        async with running(settings):
            await publish(settings, alert_record("fp1"))
            record = await asyncio.wait_for(consumer.getone(), timeout=30)
            await asyncio.sleep(1.0)
    finally:
        await consumer.stop()
    letter = orjson.loads(record.value)
    assert letter["attempts"] == 1 and letter["last_status_code"] == 400
    assert letter["channel"] == "ops" and letter["message"]["alerts"][0]["fingerprint"] == "fp1"
    assert len(receiver.requests) == 1
    log = await attempts(pool)
    assert [(a["attempt"], a["status"], a["response_code"]) for a in log] == [(1, "dead", 400)]


async def test_bad_records_are_dead_lettered_and_the_rest_delivered(
        settings: NotifierSettings, pool: asyncpg.Pool, receiver: HttpReceiver) -> None:
    await add_channel(pool, settings, "ops", "webhook", {"url": receiver.url("/hook")}, **FAST)
    consumer = AIOKafkaConsumer(topic_name(settings, Topic.DEADLETTER), auto_offset_reset="earliest",
                                **client_options(settings))
    await consumer.start()
    try:
        async with running(settings):
            await publish(settings, alert_record("good"),
                          raw=(b"not json", orjson.dumps({"fingerprint": "x", "status": "exploded"})))
            got = (await receiver.wait_for(1, timeout_s=20))[0].json
            letters = [await asyncio.wait_for(consumer.getone(), timeout=30) for _ in range(2)]
    finally:
        await consumer.stop()
    assert [a["fingerprint"] for a in got["alerts"]] == ["good"]
    assert len(letters) == 2
