"""`python -m services.ingest` (or `chimera ingest`): serve the API with uvicorn.

SIGTERM (or Ctrl-C) makes uvicorn stop accepting connections and wait up to
`SHUTDOWN_GRACE_S` for requests in flight, whose batches thus still get their
202 once Kafka acknowledged them; then the app's lifespan stops the
container, which flushes and closes the producer. A graceful stop exits 0.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn

from services.ingest.api.app import create_app, server_config
from services.ingest.config import IngestSettings
from shared.settings import ConfigError, load

# uvicorn's own exit status when the app could not start.
STARTUP_FAILURE = 3


def serve(settings: IngestSettings) -> int:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = server_config(create_app(settings), settings)
    server = uvicorn.Server(config)
    received: list[int] = []

    def note(signum: int, _: FrameType | None) -> None:
        received.append(signum)

    # uvicorn handles the signals while serving, then re-raises them with the
    # handlers it found installed; with Python's defaults that would kill the
    # process after a clean shutdown, so install handlers that only take note.
    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
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
