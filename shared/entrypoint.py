"""`python -m services.<name>`: settings read once (a bad one exits 2 naming it), logging
set up, the service's coroutine run until it returns; Ctrl-C exits 130.

`run_until_signalled` is the whole main() of a stream service (the alerter,
the notifier): it waits for Kafka and PostgreSQL (shared/startup.py), runs
until SIGTERM or Ctrl-C, then stops the service, which flushes what it holds.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

from shared.backoff import Backoff
from shared.settings import ConfigError, ServiceSettings, load
from shared.startup import start_when_ready

__all__ = ["run_service", "run_until_signalled"]

S = TypeVar("S", bound=ServiceSettings)


class StreamService(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def run_service(name: str, settings_class: type[S], serve: Callable[[S], Coroutine[Any, Any, int]]) -> int:
    try:
        settings = load(settings_class)
    except ConfigError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 130


def run_until_signalled(name: str, settings_class: type[S],
                        bootstrap: Callable[[S], Awaitable[StreamService]]) -> int:
    log = logging.getLogger(f"services.{name}")

    async def bootstrap_and_start(settings: S) -> StreamService:
        service = await bootstrap(settings)
        await service.start()  # stops (and closes) whatever it started if it fails
        return service

    async def serve(settings: S) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        service = await start_when_ready(lambda: bootstrap_and_start(settings), stop, Backoff(0.5, 10.0))
        if service is None:
            return 0
        log.info("%s running", name)
        try:
            await stop.wait()
        finally:
            await service.stop()
        return 0

    return run_service(name, settings_class, serve)
