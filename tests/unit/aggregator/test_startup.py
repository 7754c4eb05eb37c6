"""Start-up waits for Kafka and PostgreSQL, gives up at once on faults waiting cannot cure."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

from services.aggregator.config import AggregatorSettings
from services.aggregator.startup import is_transient, start_when_ready
from shared.kafka.producer import ProduceError
from shared.kafka.topics import TopicError

pytestmark = pytest.mark.unit

SETTINGS = AggregatorSettings(aggregator_retry_initial_s=0.01, aggregator_retry_max_s=0.02)


class FlakyStart:
    """Fails with the given errors in turn, then returns a started service (recording calls)."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0
        self.service = object()

    async def __call__(self, settings: AggregatorSettings) -> Any:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.service


@pytest.mark.parametrize(("error", "transient"), [
    (ConnectionRefusedError(111, "refused"), True),  # PostgreSQL not listening yet
    (asyncpg.CannotConnectNowError("the database system is starting up"), True),
    (TimeoutError(), True),
    (TopicError("topics not ready", retriable=True), True),
    (ProduceError("no broker", retriable=True), True),
    (KafkaConnectionError(), True),
    (asyncpg.InvalidPasswordError("password authentication failed"), False),
    (asyncpg.InvalidCatalogNameError('database "x" does not exist'), False),
    (TopicError("not allowed", retriable=False), False),
    (TopicAuthorizationFailedError(), False),
    (ValueError("a bug"), False),
])
def test_which_start_up_failures_are_waited_out(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


async def test_retries_transient_failures_until_the_dependencies_answer() -> None:
    attempt = FlakyStart(ConnectionRefusedError(111, "refused"), TopicError("x", retriable=True),
                         ProduceError("y", retriable=True))
    service = await start_when_ready(SETTINGS, asyncio.Event(), attempt=attempt)
    assert service is attempt.service
    assert attempt.calls == 4


async def test_a_fault_waiting_cannot_cure_is_raised_at_once() -> None:
    attempt = FlakyStart(ConnectionRefusedError(111, "refused"), asyncpg.InvalidPasswordError("no"))
    with pytest.raises(asyncpg.InvalidPasswordError):
        await start_when_ready(SETTINGS, asyncio.Event(), attempt=attempt)
    assert attempt.calls == 2


async def test_a_stop_while_waiting_returns_none() -> None:
    stop = asyncio.Event()
    attempt = FlakyStart(*[ConnectionRefusedError(111, "refused")] * 1000)
    waiting = asyncio.create_task(start_when_ready(SETTINGS, stop, attempt=attempt))
    while attempt.calls < 3:
        await asyncio.sleep(0.005)
    stop.set()
    assert await asyncio.wait_for(waiting, timeout=2) is None
