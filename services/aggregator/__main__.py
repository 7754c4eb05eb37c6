"""`python -m services.aggregator` (or `chimera aggregator`): run the pipeline until SIGTERM.

Kafka or PostgreSQL not up yet: it waits for them (startup.py), saying what
it waits for. SIGTERM or Ctrl-C: the batch in flight is finished and committed, the member
leaves the group (its partitions move at once, no session timeout to wait
for), the producer flushes; exit 0. A crash of the pipeline exits 1 after the
same cleanup; nothing is lost either way (the stored offsets say where to resume).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from shared.entrypoint import run_service

from .config import AggregatorSettings
from .startup import start_when_ready

log = logging.getLogger("services.aggregator")


async def serve(settings: AggregatorSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service = await start_when_ready(settings, stop)
    if service is None:
        return 0  # stopped while waiting for Kafka or PostgreSQL
    try:
        log.info("aggregator running (group %s)", service.store.group)
        stopped = asyncio.create_task(stop.wait())
        crashed = asyncio.create_task(service.pipeline.wait())
        await asyncio.wait({stopped, crashed}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        failed = crashed.done() and not crashed.cancelled() and crashed.exception() is not None
        if not crashed.done():
            crashed.cancel()
        return 1 if failed else 0
    finally:
        await service.stop()
        log.info("aggregator stopped: %d batches, %d records", service.stats.batches, service.stats.records)


def main(argv: Sequence[str] | None = None) -> int:
    del argv  # settings come from the environment only
    return run_service("aggregator", AggregatorSettings, serve)


if __name__ == "__main__":
    sys.exit(main())
