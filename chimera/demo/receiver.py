"""The demo's webhook receiver: a loopback HTTP server the demo's alert channel delivers to.

It checks each notification's HMAC signature (the channel is made with a
secret), keeps a short `Notice` per message for the live view and prints
nothing itself: the view shows them. Bodies are bounded; anything that is
not a signed Alertmanager v4 payload is answered 400 and not shown.
"""

from __future__ import annotations

import hmac
import socket
import time
from collections.abc import Callable
from typing import Final

import orjson
from aiohttp import web

from services.notifier.domain.messages import SIGNATURE_HEADER, webhook_signature

from .view import Notice

__all__ = ["WebhookReceiver"]

_MAX_BODY_BYTES: Final = 4 * 1024 * 1024


def _describe(alert: dict[str, object]) -> str:
    labels = alert.get("labels") if isinstance(alert.get("labels"), dict) else {}
    assert isinstance(labels, dict)
    name = str(labels.get("alertname", "alert"))
    where = ", ".join(f"{k}={v}" for k, v in labels.items() if k in ("pool", "miner", "worker", "host"))
    return f"{name} ({where})" if where else name


class WebhookReceiver:
    def __init__(self, secret: str, on_notice: Callable[[Notice], None]) -> None:
        self._secret = secret.encode()
        self._on_notice = on_notice
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.received = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/chimera-demo"

    async def start(self) -> None:
        app = web.Application(client_max_size=_MAX_BODY_BYTES)
        app.router.add_post("/chimera-demo", self._take)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _take(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = webhook_signature(self._secret, body)
        if not hmac.compare_digest(request.headers.get(SIGNATURE_HEADER, ""), expected):
            return web.Response(status=400, text="bad signature")
        try:
            payload = orjson.loads(body)
            alerts = tuple(_describe(a) for a in payload["alerts"] if isinstance(a, dict))
            status = str(payload["status"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return web.Response(status=400, text="not an Alertmanager v4 payload")
        self.received += 1
        self._on_notice(Notice(time.strftime("%H:%M:%S"), status, alerts))
        return web.Response(status=200)
