"""One ingest process serving on its own SO_REUSEPORT socket: `bench/ingest_bench.py --processes N`.

Measurement only, not a supervisor: the benchmark starts N of these on one
port and the kernel spreads connections across them, as uvicorn's
`--workers` does. Settings come from the environment, as `python -m services.ingest`.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.ingest.api.app import create_app, server_config  # noqa: E402
from services.ingest.config import IngestSettings  # noqa: E402
from shared.settings import load  # noqa: E402


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening-ready socket that other processes may bind to the same port too."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def main() -> None:
    settings = load(IngestSettings)
    server = uvicorn.Server(server_config(create_app(settings), settings))
    sock = reuseport_socket(settings.http_host, settings.http_port)
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    main()
