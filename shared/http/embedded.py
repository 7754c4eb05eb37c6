"""An ASGI app served by uvicorn inside the host's event loop, owned with start/stop.

The socket is bound here, so a taken port is an `HttpServerStartError` naming
it (not a process exit), and uvicorn's signal handlers stay off: the host
process owns SIGTERM/SIGINT and stops this server in its own shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

__all__ = ["EmbeddedHttpServer", "HttpServerStartError"]

STOP_TIMEOUT_S = 5.0


class HttpServerStartError(Exception):
    """The port could not be bound or the server did not start."""

    def __init__(self, host: str, port: int, cause: OSError) -> None:
        self.host = host
        self.port = port
        self.cause = cause
        super().__init__(f"cannot serve HTTP on {host}:{port}: {cause}")


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class EmbeddedHttpServer:
    def __init__(self, app: Any, host: str, port: int) -> None:
        self._app = app
        self.host = host
        # 0 asks for any free port; the bound one is here after start().
        self.port = port
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is not None:
            return
        sock = self._bind()
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, lifespan="off", log_level="warning", access_log=False,
                                server_header=False)
        server = self._server = _QuietServer(config)
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name=f"http-{self.port}")
        while not server.started:
            if self._task.done():
                sock.close()
                self._task.result()
                raise HttpServerStartError(self.host, self.port, OSError("the HTTP server exited at startup"))
            await asyncio.sleep(0.01)

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise HttpServerStartError(self.host, self.port, exc) from exc
        return sock

    async def stop(self) -> None:
        """Stop serving; safe before start() and when called twice."""
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT_S)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
