"""Response headers every API answer carries, as plain ASGI middleware (it never touches bodies).

- `X-Content-Type-Options: nosniff`: a browser never guesses a JSON error
  that echoes a name into HTML.
- `Cache-Control: no-store`: answers carry figures and keys' data that no
  shared cache should keep; a response that set its own (static assets of
  the API docs) keeps it.
- `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`: pages of the
  API are never framed and leak no URL to another site.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ALWAYS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
_CACHE_CONTROL: Final = b"cache-control"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(pair for pair in _ALWAYS if pair[0] not in present)
                if _CACHE_CONTROL not in present:
                    headers.append((_CACHE_CONTROL, b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
