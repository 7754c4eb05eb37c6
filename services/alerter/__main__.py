"""`python -m services.alerter` (or `chimera alerter`): evaluate alert rules until SIGTERM.

Kafka or PostgreSQL not up yet: it retries with backoff, saying what failed.
SIGTERM or Ctrl-C: the faust worker stops (the transitions it made are
stored), the relay and the producer flush; exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

import asyncpg
from aiokafka.errors import KafkaError

from shared.backoff import Backoff
from shared.entrypoint import run_service
from shared.kafka.options import KafkaClientError

from .bootstrap import Alerter, bootstrap
from .config import AlerterSettings

log = logging.getLogger("services.alerter")

_TRANSIENT = (OSError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError, KafkaError,
              KafkaClientError, TimeoutError)


async def _start_when_ready(settings: AlerterSettings, stop: asyncio.Event) -> Alerter | None:
    backoff = Backoff(0.5, 10.0)
    while not stop.is_set():
        try:
            service = await bootstrap(settings)
            await service.start()
            return service
        except _TRANSIENT as exc:
            delay = backoff.next()
            log.warning("start-up failed, retrying in %.1fs: %r", delay, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
    return None


async def serve(settings: AlerterSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service = await _start_when_ready(settings, stop)
    if service is None:
        return 0
    log.info("alerter running (metrics on %s:%d)", settings.metrics_host, service.http.port)
    try:
        await stop.wait()
    finally:
        await service.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    del argv  # settings come from the environment only
    return run_service("alerter", AlerterSettings, serve)


if __name__ == "__main__":
    sys.exit(main())
