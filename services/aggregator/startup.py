"""The aggregator's start-up: shared/startup.py's wait for Kafka and PostgreSQL, with the
aggregator's own reading of which failures waiting can cure (its StoreError classes
too, e.g. a serialization failure)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiokafka.errors import KafkaError

from shared.backoff import Backoff
from shared.db.errors import DATABASE_ERRORS
from shared.kafka.options import KafkaClientError, is_retriable
from shared.startup import start_when_ready as waiting

from .adapters.db import store_error
from .bootstrap import Aggregator, bootstrap
from .config import AggregatorSettings
from .errors import AggregatorError

__all__ = ["is_transient", "start_when_ready"]

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
    return await waiting(lambda: attempt(settings), stop, backoff, transient=is_transient)
