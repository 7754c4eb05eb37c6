"""The notifier SIGKILLed, then restarted: what was consumed and not sent is delivered once; what
was delivered is never sent again (the delivery log is the authority)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from services.notifier.config import NotifierSettings
from shared.db.pool import create_pool
from tests.conftest import Endpoints
from tests.integration.notifier.receivers import HttpReceiver, Reply
from tests.integration.notifier.service import add_channel, alert_record, attempts, notifier_settings, publish
from tests.waiting import until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def _env(settings: NotifierSettings) -> dict[str, str]:
    """The environment that makes `python -m services.notifier` use these settings."""
    env = {}
    for name in settings.model_fields_set:
        value: Any = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, list):
            value = ",".join(value)
        env[name.upper()] = str(value)
    return {**os.environ, **env, "LOG_LEVEL": "INFO"}


class Process:
    def __init__(self, settings: NotifierSettings, log: Path) -> None:
        self._settings = settings
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as sink:
            self._process = subprocess.Popen([sys.executable, "-m", "services.notifier"], cwd=ROOT,
                                             env=_env(self._settings), stdout=sink, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()

    def output(self) -> str:
        return self._log.read_text(errors="replace")[-4000:]


@pytest.fixture
async def settings(endpoints: Endpoints, topic_prefix: str, db_schema: str, tmp_path: Path) -> NotifierSettings:
    return await notifier_settings(endpoints, topic_prefix, db_schema, tmp_path / "faust",
                                   notifier_session_timeout_s=6.0)


@pytest.fixture
async def pool(settings: NotifierSettings) -> AsyncIterator[asyncpg.Pool]:
    made = await create_pool(settings)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
def process(settings: NotifierSettings, tmp_path: Path) -> Iterator[Process]:
    made = Process(settings, tmp_path / "notifier.log")
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    async with HttpReceiver() as made:
        yield made


async def test_killed_after_consuming_before_sending_delivers_once_after_restart(
        settings: NotifierSettings, pool: asyncpg.Pool, process: Process, receiver: HttpReceiver) -> None:
    await add_channel(pool, settings, "ops", "webhook", {"url": receiver.url("/hook")},
                      group_wait_ms=4_000, group_interval_ms=1_000, repeat_interval_ms=3_600_000)
    process.start()
    await publish(settings, alert_record("fp1"), alert_record("fp2"))
    await until(lambda: pool.fetchval("SELECT count(*) = 2 FROM notifier_alerts"), 60, "the alerts consumed")
    process.kill()  # inside group_wait: nothing was sent
    assert receiver.requests == []
    process.start()
    got = await receiver.wait_for(1, timeout_s=60)
    await asyncio.sleep(3.0)  # replays and group intervals: nothing more
    assert len(receiver.requests) == 1, process.output()
    assert sorted(a["fingerprint"] for a in got[0].json["alerts"]) == ["fp1", "fp2"]
    assert [a["status"] for a in await attempts(pool)] == ["sent"]


async def test_killed_after_sending_does_not_send_again(
        settings: NotifierSettings, pool: asyncpg.Pool, process: Process, receiver: HttpReceiver) -> None:
    await add_channel(pool, settings, "ops", "webhook", {"url": receiver.url("/hook")},
                      group_wait_ms=300, group_interval_ms=500, repeat_interval_ms=3_600_000)
    process.start()
    await publish(settings, alert_record("fp1"))
    await receiver.wait_for(1, timeout_s=60)
    await until(lambda: pool.fetchval("SELECT count(*) = 1 FROM notification_deliveries WHERE status = 'sent'"),
                30, "the delivery logged")
    process.kill()
    process.start()
    await publish(settings, alert_record("fp2"))  # shows the restarted notifier alive and sending
    try:
        got = await receiver.wait_for(2, timeout_s=60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the restarted notifier said:\n{process.output()}") from None
    await asyncio.sleep(2.0)
    # fp1 was not told again on its own: the next message is the group with fp2 new in it.
    assert len(receiver.requests) == 2, process.output()
    told = [sorted(a["fingerprint"] for a in r.json["alerts"]) for r in got]
    assert told == [["fp1"], ["fp1", "fp2"]], told
    assert [a["status"] for a in await attempts(pool)] == ["sent", "sent"]


async def test_killed_while_retrying_delivers_once_after_restart(
        settings: NotifierSettings, pool: asyncpg.Pool, process: Process, receiver: HttpReceiver) -> None:
    receiver.script("/hook", Reply(503, headers={"Retry-After": "3"}))
    await add_channel(pool, settings, "ops", "webhook", {"url": receiver.url("/hook")},
                      group_wait_ms=200, group_interval_ms=500, repeat_interval_ms=3_600_000)
    process.start()
    await publish(settings, alert_record("fp1"))
    await receiver.wait_for(1, timeout_s=60)
    await until(lambda: pool.fetchval("SELECT count(*) = 1 FROM notification_deliveries WHERE status = 'retrying'"),
                30, "the retry scheduled")
    process.kill()
    process.start()
    await receiver.wait_for(2, timeout_s=60)
    await asyncio.sleep(2.0)
    assert len(receiver.requests) == 2, process.output()
    assert [(a["attempt"], a["status"]) for a in await attempts(pool)] == [(1, "failed"), (2, "sent")]
