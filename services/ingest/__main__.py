"""`python -m services.ingest` (or `chimera ingest`): serve the API with uvicorn.

SIGTERM (or Ctrl-C) makes uvicorn stop accepting connections and wait up to
`SHUTDOWN_GRACE_S` for requests in flight, whose batches thus still get their
202 once Kafka acknowledged them; then the app's lifespan stops the
container, which flushes and closes the producer. A graceful stop exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from types import FrameType

import uvicorn
from fastapi import FastAPI

from services.ingest.api.app import create_app, server_config
from services.ingest.api.ops import metrics_app
from services.ingest.config import IngestSettings
from shared.settings import ConfigError, load

# uvicorn's own exit status when the app could not start.
STARTUP_FAILURE = 3


class _FollowerServer(uvicorn.Server):
    """The metrics listener: stopped by the public server, so it leaves the signals to it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def metrics_server(app: FastAPI, settings: IngestSettings) -> uvicorn.Server | None:
    """/metrics on METRICS_HOST:METRICS_PORT (the monitoring network), or None when it stays on the public port."""
    if settings.metrics_port is None:
        return None
    config = server_config(metrics_app(app), settings, host=settings.metrics_host, port=settings.metrics_port,
                           lifespan="off")
    return _FollowerServer(config)


async def serve_all(public: uvicorn.Server, follower: uvicorn.Server | None) -> None:
    """Run the public server; the metrics listener opens once the public app has started
    (its container answers /metrics) and closes when the public server stops."""
    public_task = asyncio.create_task(public.serve(), name="ingest-public-listener")
    follower_task: asyncio.Task[None] | None = None
    try:
        while follower is not None and not public.started and not public_task.done():
            await asyncio.sleep(0.05)
        if follower is not None and public.started:
            follower_task = asyncio.create_task(follower.serve(), name="ingest-metrics-listener")
        await public_task
    finally:
        if follower is not None and follower_task is not None:
            follower.should_exit = True
            await follower_task


def serve(settings: IngestSettings) -> int:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    server = uvicorn.Server(server_config(app, settings))
    follower = metrics_server(app, settings)
    received: list[int] = []

    def note(signum: int, _: FrameType | None) -> None:
        received.append(signum)

    # uvicorn handles the signals while serving, then re-raises them with the
    # handlers it found installed; with Python's defaults that would kill the
    # process after a clean shutdown, so install handlers that only take note.
    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        # The loop HTTP_LOOP names (uvicorn's factory); asyncio.run would always build asyncio's.
        with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
            runner.run(serve_all(server, follower))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        return STARTUP_FAILURE
    return 130 if signal.SIGINT in received else 0


def main(argv: Sequence[str] | None = None) -> int:
    del argv  # settings come from the environment only
    try:
        settings = load(IngestSettings)
    except ConfigError as exc:
        print(f"ingest: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
