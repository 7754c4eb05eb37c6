"""The alerter through restarts, bad records, rule edits and a second member, on the real stack."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from services.alerter.adapters.rule_store import RuleStore
from services.alerter.config import AlerterSettings
from services.alerter.domain.conditions import fingerprint
from shared.clock import now_ms
from shared.kafka.topics import Topic
from tests.integration.ingest.helpers import read_topics
from tests.waiting import until

from .conftest import PARTITIONS, add_rule, running, send_snapshots, worker_record

pytestmark = pytest.mark.integration


async def published(settings: AlerterSettings) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in await read_topics(settings, (Topic.ALERTS,))]


async def test_a_bad_record_is_dead_lettered_and_evaluation_goes_on(alerter_settings: AlerterSettings,
                                                                   pool: asyncpg.Pool) -> None:
    await add_rule(pool)
    async with running(alerter_settings):
        await send_snapshots(alerter_settings, worker_record(now_ms(), online=False),
                             raw=(b"not json", b'{"entity": "planet", "pool": "main"}'))
        await until(lambda: pool.fetchrow("SELECT 1 FROM alerts WHERE status = 'firing'"))

        async def letters() -> Any:
            found = await read_topics(alerter_settings, (Topic.DEADLETTER,))
            return found if len(found) == 2 else None

        found = await letters() or await until(letters)
    errors = sorted(dict(r.headers)["x-error"].decode() for r in found)
    assert any("entity" in e for e in errors) and any("JSON" in e for e in errors)


async def test_a_restart_while_pending_keeps_the_start_and_fires_once(alerter_settings: AlerterSettings,
                                                                     pool: asyncpg.Pool) -> None:
    await add_rule(pool, duration_ms=8_000)
    async with running(alerter_settings):
        await send_snapshots(alerter_settings, worker_record(now_ms(), online=False))
        pending = await until(lambda: pool.fetchrow("SELECT * FROM alerts WHERE status = 'pending'"))
    async with running(alerter_settings):  # a new process: the group's state comes from the changelog
        firing = await until(lambda: pool.fetchrow("SELECT * FROM alerts WHERE status = 'firing'"), 30)
        assert firing["started_at"] == pending["started_at"]
        assert firing["fired_at"] - firing["started_at"] == timedelta(seconds=8)
        records = await until(lambda: published(alerter_settings))
    async with running(alerter_settings):  # restarted while firing: nothing new to say
        await send_snapshots(alerter_settings, worker_record(now_ms(), online=False))
        await until(lambda: pool.fetchval("SELECT count(*) FROM alert_groups WHERE status = 'firing'"))
    assert [r["status"] for r in await published(alerter_settings)] == [r["status"] for r in records] == ["firing"]
    assert await pool.fetchval("SELECT count(*) FROM alerts") == 1


async def test_a_group_changed_before_the_first_tick_after_a_restart_hides_no_other_from_the_ticks(
    alerter_settings: AlerterSettings, pool: asyncpg.Pool,
) -> None:
    rule = await add_rule(pool)
    async with running(alerter_settings):
        await send_snapshots(alerter_settings, worker_record(now_ms(), worker="w1", online=False))
        await until(lambda: pool.fetchval("SELECT count(*) = 1 FROM alerts WHERE status = 'firing'"))
    # A worker whose group is on w1's partition of the observations; its record is sent before
    # the restart, so its group changes seconds ahead of the partition's first tick.
    neighbour = next(w for w in (f"w{i}" for i in range(2, 100))
                     if _group_partition(rule.id, w) == _group_partition(rule.id, "w1"))
    await send_snapshots(alerter_settings, worker_record(now_ms(), worker=neighbour, online=True))
    restarted = alerter_settings.model_copy(update={"alerter_tick_s": 5.0, "alerter_stale_after_s": 2.0})
    async with running(restarted):  # w1 says nothing more: a tick finds its series stale
        gone = await until(lambda: pool.fetchrow("SELECT * FROM alerts WHERE status = 'resolved'"), 30)
    assert gone["labels"]["worker"] == "w1" and gone["end_reason"] == "data stopped"


def _group_partition(rule_id: int, worker: str) -> int:
    """The observations partition of a worker's group (the producer's default partitioner)."""
    key = fingerprint(rule_id, {"miner": "m1", "worker": worker}).encode()
    return int(DefaultPartitioner()(key, list(range(PARTITIONS)), list(range(PARTITIONS))))


async def test_a_deleted_rule_resolves_its_alerts_and_an_edit_judges_again(alerter_settings: AlerterSettings,
                                                                           pool: asyncpg.Pool) -> None:
    offline = await add_rule(pool, name="offline")
    slow = await add_rule(pool, name="slow", metric="worker_hashrate", operator="<", threshold=2e12, window="1h")
    async with running(alerter_settings):
        await send_snapshots(alerter_settings, worker_record(now_ms(), online=False))  # 1e12 H/s, offline
        await until(lambda: pool.fetchval("SELECT count(*) = 2 FROM alerts WHERE status = 'firing'"))
        await RuleStore(pool).delete(offline.id)
        gone = await until(lambda: pool.fetchrow("SELECT * FROM alerts WHERE status = 'resolved'"))
        assert gone["name"] == "offline" and gone["end_reason"] == "rule deleted"
        await RuleStore(pool).update(slow.with_changes(threshold=5e11))  # 1e12 is no longer slow
        edited = await until(lambda: pool.fetchrow(
            "SELECT * FROM alerts WHERE status = 'resolved' AND name = 'slow'"))
        assert edited["end_reason"] == "condition cleared"
        statuses = await until(lambda: _four(alerter_settings))
    assert sorted(r["status"] for r in statuses) == ["firing", "firing", "resolved", "resolved"]


async def _four(settings: AlerterSettings) -> list[dict[str, Any]] | None:
    got = await published(settings)
    return got if len(got) >= 4 else None


async def test_two_members_split_the_groups_and_a_leaver_hands_over_without_a_second_firing(
    alerter_settings: AlerterSettings, pool: asyncpg.Pool,
) -> None:
    await add_rule(pool)
    workers = [f"w{i}" for i in range(12)]
    async with running(alerter_settings) as first:
        async with running(alerter_settings) as second:
            seen: list[Any] = []

            async def both_hold_steadily() -> bool:
                held = [frozenset(s.streams.app.assignor.assigned_actives()) for s in (first, second)]
                seen.append(held)
                # Both hold partitions, the same ones for a second: the rebalance is over.
                return all(held) and len(seen) > 5 and all(h == held for h in seen[-6:])

            await until(both_hold_steadily, 90)  # the series split between them
            await send_snapshots(alerter_settings, *(worker_record(now_ms(), worker=w, online=False) for w in workers))
            await until(lambda: pool.fetchval("SELECT count(*) = 12 FROM alerts WHERE status = 'firing'"), 120)
        # The second left: the first takes its groups over from the changelog, fires nothing again,
        # and resolves them when the workers come back.
        await send_snapshots(alerter_settings, *(worker_record(now_ms(), worker=w, online=True) for w in workers))
        try:  # as long as the firing may take: a loaded machine once needed more than 60 s here
            await until(lambda: pool.fetchval("SELECT count(*) = 12 FROM alerts WHERE status = 'resolved'"), 120)
        except AssertionError:
            statuses = dict(await pool.fetch("SELECT status, count(*) FROM alerts GROUP BY status"))
            held = sorted(first.streams.app.assignor.assigned_actives())
            raise AssertionError(f"alerts by status {statuses}; the first member holds {held}") from None
    records = await published(alerter_settings)
    assert sorted(r["status"] for r in records).count("firing") == 12
    assert len(records) == 24
