"""POSTing a body to a channel's URL, which may point anywhere an admin or a miner typed (aiohttp).

A destination is hostile until checked: the URL as written (`url_refusal`:
scheme, credentials, an address literal), then every address its host name
resolves to, at send time (`CheckedResolver`, the connector's resolver, so
the connection goes only to addresses that were checked and a name that
points inside the pool's network is refused like the address itself).
Redirects are not followed (a 3xx could lead anywhere), the whole exchange
is bounded by a timeout, and no more than `max_response_bytes` of an answer
is ever read: a receiver answering 20 MB costs us that many bytes, no more.
Answers are taken as sent (`Accept-Encoding: identity`, no decompression),
so a small compressed body cannot expand in our memory either.

Nothing here raises for what the network or the destination does: `post`
gives an `HttpReply` (any status) or an `HttpFailure` (nothing usable came
back). What a status means for a channel is the senders' business.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from services.notifier.domain.destinations import Network, address_refusal, url_refusal

__all__ = ["CheckedResolver", "DestinationRefused", "HttpFailure", "HttpPoster", "HttpReply", "timeout_text"]

_CHUNK: Final = 64 * 1024


class DestinationRefused(OSError):
    """A host name resolved to an address channels may not reach.

    An OSError because aiohttp hands a resolver's OSError on inside
    `ClientConnectorDNSError.os_error`, where `post` finds it by type."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver, refusing a name when ANY of its addresses is refused.

    Any, not just the one tried first: the connector falls back to the next
    address when one does not answer, and a name with one public and one
    private address must not reach the private one that way."""

    def __init__(self, allowed: tuple[Network, ...], inner: AbstractResolver | None = None) -> None:
        self._allowed = allowed
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            refusal = address_refusal(result["host"], self._allowed)
            if refusal is not None:
                raise DestinationRefused(f"{host} resolves to {result['host']}: {refusal}")
        return results

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]
    body: bytes  # at most max_response_bytes of it
    cut: bool  # the answer went on past what was read


@dataclass(frozen=True, slots=True)
class HttpFailure:
    error: str
    retriable: bool
    refused: bool = False


def timeout_text(timeout_s: float) -> str:
    return f"timed out after {timeout_s:g}s"


def _reason(error: BaseException | None) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return error.verify_message or "certificate verify failed"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__ if error is not None else "failed"


class HttpPoster:
    def __init__(self, *, allowed: tuple[Network, ...], timeout_s: float, max_response_bytes: int,
                 user_agent: str) -> None:
        if timeout_s <= 0 or max_response_bytes < 1:
            raise ValueError("timeout_s and max_response_bytes must be positive")
        self._allowed = allowed
        self._timeout_s = timeout_s
        self._max_bytes = max_response_bytes
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(resolver=CheckedResolver(self._allowed))
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            headers={"User-Agent": self._user_agent, "Accept-Encoding": "identity"},
            auto_decompress=False,
            # One channel's cookies must not ride along to another's destination.
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )

    async def stop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpReply | HttpFailure:
        refusal = url_refusal(url, self._allowed)
        if refusal is not None:
            return HttpFailure(f"refused: {refusal}", retriable=False, refused=True)
        if self._session is None:
            raise RuntimeError("HttpPoster.start() was not called")
        try:
            # ClientTimeout alone does not cover our own reads of the body: this bounds it all.
            async with asyncio.timeout(self._timeout_s):
                async with self._session.post(url, data=body, headers=dict(headers),
                                              allow_redirects=False) as response:
                    data, cut = await self._read_capped(response)
                    return HttpReply(response.status, response.headers, data, cut)
        except TimeoutError:
            return HttpFailure(timeout_text(self._timeout_s), retriable=True)
        except aiohttp.ClientConnectorDNSError as exc:
            if isinstance(exc.os_error, DestinationRefused):
                return HttpFailure(f"refused: {exc.os_error.reason}", retriable=False, refused=True)
            return HttpFailure(f"cannot resolve {exc.host}: {_reason(exc.os_error)}", retriable=True)
        except aiohttp.ClientConnectorCertificateError as exc:
            # The same certificate is refused on every retry until someone fixes it.
            return HttpFailure(f"TLS certificate of {exc.host} not accepted: {_reason(exc.certificate_error)}",
                               retriable=False)
        except aiohttp.ClientConnectorError as exc:
            return HttpFailure(f"cannot connect to {exc.host}:{exc.port}: {_reason(exc.os_error)}",
                               retriable=True)
        except aiohttp.InvalidURL:
            return HttpFailure("not a usable URL", retriable=False)
        except ssl.SSLError as exc:
            return HttpFailure(f"TLS failed: {exc.reason or type(exc).__name__}", retriable=True)
        except (aiohttp.ClientError, OSError) as exc:
            # Dropped connections, malformed answers: the destination may behave on the next try.
            return HttpFailure(f"connection failed: {type(exc).__name__}", retriable=True)

    async def _read_capped(self, response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while size < self._max_bytes:
            chunk = await response.content.read(min(_CHUNK, self._max_bytes - size))
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
            size += len(chunk)
        # One byte more tells a body of exactly the limit from a longer one.
        cut = bool(await response.content.read(1))
        if cut:
            # Closed, not released: releasing would keep reading the rest to reuse the connection.
            response.close()
        return b"".join(chunks), cut
