"""Start-up that waits for Kafka and PostgreSQL instead of exiting.

After a power cut the database, the broker and the services come back in any
order. A service that exits when it finds one of them down only hands the
problem to a supervisor's restart loop; this retries with backoff and says
each time what failed. Faults that waiting cannot cure (a wrong password, a
missing privilege, an unknown database, a port taken by another server) end
the start-up with the error, so a misconfiguration is seen at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError

from shared.backoff import Backoff
from shared.db.errors import DATABASE_ERRORS, database_unavailable
from shared.kafka.options import is_retriable

__all__ = ["is_transient", "start_when_ready"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """Whether a start-up failure may cure itself: an error that says so (`retriable`), a
    database that is away, a Kafka error the client would retry."""
    retriable = getattr(exc, "retriable", None)
    if isinstance(retriable, bool):
        return retriable
    if isinstance(exc, DATABASE_ERRORS):
        return database_unavailable(exc)
    if isinstance(exc, KafkaError):
        return is_retriable(exc)
    return False


async def start_when_ready(
    attempt: Callable[[], Awaitable[T]], stop: asyncio.Event, backoff: Backoff,
    *, transient: Callable[[BaseException], bool] = is_transient,
) -> T | None:
    """What `attempt` returns once it succeeds; None if `stop` is set first. Raises the
    first failure that waiting cannot cure (`transient` says which can)."""
    attempts = 0
    while not stop.is_set():
        attempts += 1
        try:
            started = await attempt()
        except Exception as exc:
            if not transient(exc):
                raise
            delay = backoff.next()
            log.warning("start-up attempt %d failed, retrying in %.1fs: %s", attempts, delay, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            continue
        if attempts > 1:
            log.info("started after %d attempts", attempts)
        return started
    return None
