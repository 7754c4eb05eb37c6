"""An uvicorn HTTP/1.1 protocol that slow or greedy clients cannot use to hold connections.

uvicorn's h11 protocol closes a kept-alive connection that stays idle, but cancels that
timer at the first byte of the next request and arms nothing instead: headers trickled a
byte a second keep the connection open forever. Its `limit_concurrency` is one global
figure, so one address can take all of it. `GuardedH11Protocol` adds three things:

- a header read timeout: from the first byte of a request (the first one on a connection
  or the next one on a kept-alive connection) until h11 has its request line and headers,
  at most `header_timeout_s`; past it the client gets a 408 and the connection is closed.
  Once the head is in, the request is left alone (the app times out slow bodies);
- an idle timeout whenever the connection waits for a request with nothing received:
  uvicorn arms its keep-alive timer only after a response, so a client that connects and
  never sends a byte, or one that finishes sending a body the app answered without
  reading and then goes quiet, would be kept forever. `timeout_keep_alive` covers both;
- a cap of open connections per client address: a connection beyond
  `max_connections_per_client` is closed in `connection_made`, before anything is read.

The client address here is the TCP peer, never the one uvicorn rewrites from proxy headers
(`X-Forwarded-For`): the cap guards sockets, and the socket's other end is the proxy.
Behind a reverse proxy or a load balancer, every client shares the proxy's address, so
raise the cap to what the proxy may open (or rely on the proxy's own per-client limits).
Each IPv6 address counts on its own, although one client usually holds a whole /64.

Connections on a Unix socket have no peer address and are not capped.

A response sent before the request's body was read in full (a 401 before the body, a
413 past a limit) ends the connection: uvicorn would otherwise discard the rest of the
body for as long as the client trickles it, and no clock bounds that. The close lingers
(`LINGER_S`) so the answer reaches the client before the socket goes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, ClassVar

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol
from uvicorn.server import ServerState

log = logging.getLogger(__name__)

_TIMEOUT_BODY = b"Request header timeout"
# How long the rest of an unread body is discarded after an early answer, before closing.
LINGER_S = 2.0


class ConnectionLimits:
    """The limits of one server and what its connections share: open connections per
    address, and counters a metrics collector reads (`refused_total`,
    `header_timeouts_total`). Only the event loop thread touches it, hence no lock."""

    def __init__(self, *, header_timeout_s: float, max_connections_per_client: int) -> None:
        if header_timeout_s <= 0:
            raise ValueError(f"header_timeout_s must be positive, got {header_timeout_s}")
        if max_connections_per_client < 1:
            raise ValueError(f"max_connections_per_client must be >= 1, got {max_connections_per_client}")
        self.header_timeout_s = header_timeout_s
        self.max_connections_per_client = max_connections_per_client
        # Only addresses with an open connection are kept, so the dict is bounded by the
        # number of open sockets, not by every address ever seen.
        self.open_by_address: dict[str, int] = {}
        self.refused_total = 0
        self.header_timeouts_total = 0
        self.draining = False
        self._drain_listeners: list[Callable[[], None]] = []

    def on_drain(self, listener: Callable[[], None]) -> None:
        """Call `listener` when the server starts its graceful shutdown."""
        self._drain_listeners.append(listener)

    def drain(self) -> None:
        """The server is shutting down. A response that never ends on its own (an event
        stream) would hold the shutdown for its whole grace period: the listeners end them."""
        if self.draining:
            return
        self.draining = True
        for listener in self._drain_listeners:
            listener()

    def acquire(self, address: str) -> bool:
        """Count a new connection from `address`; False (and counted as refused) when the
        address already holds its maximum."""
        open_now = self.open_by_address.get(address, 0)
        if open_now >= self.max_connections_per_client:
            self.refused_total += 1
            return False
        self.open_by_address[address] = open_now + 1
        return True

    def release(self, address: str) -> None:
        """Uncount a connection `acquire` accepted. Releasing what was never acquired
        raises: a silent miscount would let an address slip past its cap."""
        open_now = self.open_by_address.get(address, 0)
        if open_now < 1:
            raise LookupError(f"no open connection counted for {address!r}")
        if open_now == 1:
            del self.open_by_address[address]
        else:
            self.open_by_address[address] = open_now - 1

    def header_timed_out(self) -> None:
        self.header_timeouts_total += 1

    def open_connections(self, address: str) -> int:
        return self.open_by_address.get(address, 0)

    @property
    def open_total(self) -> int:
        return sum(self.open_by_address.values())


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header read timeout, an idle timeout whenever it waits
    for a request, and a per-address connection cap. Build it with `guarded_protocol(limits)`:
    uvicorn instantiates the class per connection and the limits must be shared."""

    limits: ClassVar[ConnectionLimits]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not hasattr(type(self), "limits"):
            raise TypeError("GuardedH11Protocol has no limits: build the class with guarded_protocol(limits)")
        super().__init__(config=config, server_state=server_state, app_state=app_state, _loop=_loop)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._counted_address: str | None = None
        self._lingering = False
        self._linger_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # The parent's bookkeeping runs even for a refused connection, so that its own
        # connection_lost (which asyncio calls after close()) finds a consistent state.
        super().connection_made(transport)
        address = self.client[0] if self.client is not None else None
        if address is not None:
            if not self.limits.acquire(address):
                # Closing here, before asyncio registers the socket for reading, means
                # nothing of the request is ever read.
                log.debug("refused a connection from %s: %d already open", address,
                          self.limits.max_connections_per_client)
                transport.close()
                return
            self._counted_address = address
        self._track_request_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        if self._linger_deadline is not None:
            self._linger_deadline.cancel()
        # The parent cancels its keep-alive timer only on a clean close; a reset would
        # leave it armed, holding this protocol until it fires.
        self._unset_keepalive_if_required()
        try:
            super().connection_lost(exc)
        finally:
            self._release_address()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # the rest of a body nobody will read
        super().data_received(data)
        self._track_request_head()

    def on_response_complete(self) -> None:
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            # Answered before the request body was read (401, 413, ...): uvicorn would go
            # on discarding the rest of the body for as long as the client cares to
            # trickle it, and the connection cannot serve another request before that.
            self.server_state.total_requests += 1
            self._linger()
            return
        super().on_response_complete()
        # A pipelined request may already sit partly in h11's buffer: its clock starts now.
        self._track_request_head()

    def _linger(self) -> None:
        """Close after an early answer, gently: half-close so the answer is delivered,
        discard what the client still sends, close for good after LINGER_S. Closing at
        once with unread bytes in the socket makes the kernel reset the connection, and a
        reset can destroy the answer before the client reads it."""
        self._lingering = True
        self._cancel_header_deadline()
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger_deadline = self.loop.call_later(LINGER_S, self.transport.close)

    def shutdown(self) -> None:
        self.limits.drain()
        super().shutdown()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        # The WebSocket protocol takes the transport over and gets the connection_lost this
        # protocol never will, so the count is given back here rather than leaked.
        self._cancel_header_deadline()
        self._release_address()
        super().handle_websocket_upgrade(event)

    def _track_request_head(self) -> None:
        """Keep exactly the right clock running for where the connection stands."""
        if self.conn.their_state is not h11.IDLE:
            # The head is in (or the connection is past requests): stop the clock.
            self._cancel_header_deadline()
            return
        if self._header_deadline is not None or self.transport.is_closing():
            return
        if self.conn.trailing_data[0]:
            # A request is under way, so the connection is not idle: the parent arms its
            # keep-alive timer before it looks at pipelined bytes, and that timer must not
            # cut a head the header timeout still allows.
            self._unset_keepalive_if_required()
            self._header_deadline = self.loop.call_later(self.limits.header_timeout_s, self._header_timeout_handler)
        elif self.timeout_keep_alive_task is None:
            # Waiting for a request with nothing sent: idle. The parent arms its timer only
            # after a response, so neither a new connection nor one that has just drained a
            # body the app never read would ever be closed.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def _header_timeout_handler(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        self.limits.header_timed_out()
        log.debug("closed a connection from %s: request head not complete in %.1f s",
                  self._counted_address, self.limits.header_timeout_s)
        self._send_408()
        self.transport.close()

    def _send_408(self) -> None:
        # h11 lets a server answer from IDLE (no request seen yet) precisely for this case.
        if self.conn.our_state is not h11.IDLE:
            return
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(_TIMEOUT_BODY)).encode("ascii")),
            (b"connection", b"close"),
        ]
        events: tuple[h11.Event, ...] = (
            h11.Response(status_code=408, headers=headers, reason=STATUS_PHRASES[408]),
            h11.Data(data=_TIMEOUT_BODY),
            h11.EndOfMessage(),
            h11.ConnectionClosed(),
        )
        try:
            output = [self.conn.send(event) for event in events]
        except h11.LocalProtocolError:
            return  # h11 refuses the answer in this state: closing alone is enough
        self.transport.write(b"".join(chunk for chunk in output if chunk is not None))

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _release_address(self) -> None:
        if self._counted_address is not None:
            address, self._counted_address = self._counted_address, None
            self.limits.release(address)


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """A protocol class for `uvicorn.Config(http=...)` whose connections share `limits`."""

    class BoundGuardedH11Protocol(GuardedH11Protocol):
        pass

    BoundGuardedH11Protocol.limits = limits
    return BoundGuardedH11Protocol

