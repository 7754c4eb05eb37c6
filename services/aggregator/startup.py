"""Start-up that waits for Kafka and PostgreSQL instead of exiting.

After a power cut the database, the broker and the services come back in any
order. An aggregator that exits when it finds one of them down only hands the
problem to a supervisor's restart loop and its log noise; this one retries
with backoff and says each time what it is waiting for. Faults that waiting
cannot cure (a wrong password, a missing privilege, an unknown database, a
port already taken by someone else's server) still end the start-up with the
error, so a misconfiguration is seen at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiokafka.errors import KafkaError

from shared.backoff import Backoff
from shared.db.errors import DATABASE_ERRORS
from shared.kafka.options import KafkaClientError, is_retriable

from .adapters.db import store_error
from .bootstrap import Aggregator, bootstrap
from .config import AggregatorSettings
from .errors import AggregatorError

__all__ = ["is_transient", "start_when_ready"]

log = logging.getLogger(__name__)

Attempt = Callable[[AggregatorSettings], Awaitable[Aggregator]]


def is_transient(exc: BaseException) -> bool:
    """Whether a start-up failure may cure itself (a dependency not up yet)."""
    if isinstance(exc, (KafkaClientError, AggregatorError)):
        return exc.retriable
    if isinstance(exc, DATABASE_ERRORS):
        return store_error(exc, "connect").retriable
    if isinstance(exc, KafkaError):
        return is_retriable(exc)
    return False


async def _bootstrap_and_start(settings: AggregatorSettings) -> Aggregator:
    service = await bootstrap(settings)
    await service.start()  # stops (and closes) whatever it started if it fails
    return service


async def start_when_ready(
    settings: AggregatorSettings, stop: asyncio.Event, *, attempt: Attempt = _bootstrap_and_start,
) -> Aggregator | None:
    """The started service, once Kafka and PostgreSQL answer; None if `stop` is set first.

    Raises the first failure that waiting cannot cure."""
    backoff = Backoff(settings.aggregator_retry_initial_s, settings.aggregator_retry_max_s)
    attempts = 0
    while not stop.is_set():
        attempts += 1
        try:
            service = await attempt(settings)
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = backoff.next()
            log.warning("start-up attempt %d failed, retrying in %.1fs: %s", attempts, delay, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            continue
        if attempts > 1:
            log.info("started after %d attempts", attempts)
        return service
    return None
