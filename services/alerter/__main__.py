"""`python -m services.alerter` (or `chimera alerter`): evaluate alert rules until SIGTERM.

Kafka or PostgreSQL not up yet: it waits for them (shared/startup.py), saying what failed.
SIGTERM or Ctrl-C: the faust worker stops (the transitions it made are
stored), the relay and the producer flush; exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from shared.backoff import Backoff
from shared.entrypoint import run_service
from shared.startup import start_when_ready

from .bootstrap import Alerter, bootstrap
from .config import AlerterSettings

log = logging.getLogger("services.alerter")

async def _bootstrap_and_start(settings: AlerterSettings) -> Alerter:
    service = await bootstrap(settings)
    await service.start()  # stops (and closes) whatever it started if it fails
    return service


async def serve(settings: AlerterSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service = await start_when_ready(lambda: _bootstrap_and_start(settings), stop, Backoff(0.5, 10.0))
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
