"""GuardedH11Protocol over real sockets: trickled request heads are cut, idle connections
close, and one address cannot open more than its share of connections."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from shared.http.protocol import LINGER_S, ConnectionLimits, guarded_protocol
from tests.integration.conftest import free_port
from tests.waiting import until

pytestmark = pytest.mark.integration

HEADER_TIMEOUT_S = 1.0
KEEP_ALIVE_S = 1  # uvicorn takes whole seconds here
TRICKLE_INTERVAL_S = 0.2
CLOSE_BOUND_S = 5.0
HEAD = b"GET / HTTP/1.1\r\nHost: x\r\n"  # never finished: the blank line is missing
REQUEST = HEAD + b"\r\n"
LOOPBACK = "127.0.0.1"


async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
              send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """200 "ok" after reading the whole body; `/early` answers without reading it."""
    assert scope["type"] == "http"
    while scope["path"] != "/early" and (await receive()).get("more_body", False):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@contextlib.asynccontextmanager
async def serving(protocol: type[H11Protocol]) -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(app, host=LOOPBACK, port=port, http=protocol, lifespan="off", log_level="warning",
                            timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="test-http-protocol-server")
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the server exited during startup")
            await asyncio.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        await task


def limits(cap: int = 64) -> ConnectionLimits:
    return ConnectionLimits(header_timeout_s=HEADER_TIMEOUT_S, max_connections_per_client=cap)


@contextlib.asynccontextmanager
async def connection(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes = REQUEST) -> bytes:
    """Send one request, return the response's status line and body."""
    writer.write(request)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLOSE_BOUND_S)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in header_lines if line.lower().startswith("content-length:"))
    body = await asyncio.wait_for(reader.readexactly(length), CLOSE_BOUND_S)
    return status_line.encode() + b" " + body


async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write `data` a byte at a time, as a slowloris client does, until the server hangs up."""
    for byte in data:
        if reader.at_eof():
            return
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(TRICKLE_INTERVAL_S)


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends before it closes; a reset counts as closed."""
    try:
        return await asyncio.wait_for(reader.read(), CLOSE_BOUND_S)
    except ConnectionResetError:
        return b""


@contextlib.asynccontextmanager
async def trickling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> AsyncIterator[None]:
    task = asyncio.create_task(trickle(reader, writer, data), name="test-trickle")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_trickled_head_is_cut_after_the_header_timeout() -> None:
    counts = limits()
    async with serving(guarded_protocol(counts)) as port, connection(port) as (reader, writer):
        started = time.monotonic()
        async with trickling(reader, writer, HEAD):
            answer = await read_until_closed(reader)
        elapsed_s = time.monotonic() - started
    assert HEADER_TIMEOUT_S * 0.9 <= elapsed_s < HEADER_TIMEOUT_S + 1.0
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer.lower()
    assert counts.header_timeouts_total == 1


async def test_without_the_guard_trickled_and_silent_connections_stay_open() -> None:
    """What the guard fixes: uvicorn's own protocol keeps both connections past any bound."""
    async with serving(H11Protocol) as port, connection(port) as (reader, writer), \
            connection(port) as (silent_reader, _):
        async with trickling(reader, writer, HEAD):
            await asyncio.sleep(3.0)
            assert not reader.at_eof()
            assert not silent_reader.at_eof()


async def test_a_connection_that_sends_nothing_closes_after_the_idle_timeout() -> None:
    counts = limits()
    async with serving(guarded_protocol(counts)) as port, connection(port) as (reader, _):
        started = time.monotonic()
        assert await read_until_closed(reader) == b""
        elapsed_s = time.monotonic() - started
        assert KEEP_ALIVE_S * 0.9 <= elapsed_s < KEEP_ALIVE_S + 1.0
        await until(lambda: counts.open_total == 0, CLOSE_BOUND_S)
    assert counts.header_timeouts_total == 0


async def test_normal_requests_are_served_on_a_kept_alive_connection() -> None:
    counts = limits()
    async with serving(guarded_protocol(counts)) as port, connection(port) as (reader, writer):
        assert await exchange(reader, writer) == b"HTTP/1.1 200 OK ok"
        assert await exchange(reader, writer) == b"HTTP/1.1 200 OK ok"
        started = time.monotonic()
        assert await read_until_closed(reader) == b""  # uvicorn's keep-alive timeout still works
        assert KEEP_ALIVE_S * 0.9 <= time.monotonic() - started < KEEP_ALIVE_S + 1.0
    assert counts.header_timeouts_total == 0


async def test_the_next_head_on_a_kept_alive_connection_is_cut_too() -> None:
    counts = limits()
    async with serving(guarded_protocol(counts)) as port, connection(port) as (reader, writer):
        assert await exchange(reader, writer) == b"HTTP/1.1 200 OK ok"
        started = time.monotonic()
        async with trickling(reader, writer, HEAD):
            answer = await read_until_closed(reader)
        elapsed_s = time.monotonic() - started
    # Trickling first outlasts the keep-alive timeout; the header timeout must cut it.
    assert HEADER_TIMEOUT_S * 0.9 <= elapsed_s < HEADER_TIMEOUT_S + 1.0
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert counts.header_timeouts_total == 1


async def test_a_pipelined_head_left_unfinished_is_cut() -> None:
    """The next request's first bytes came with the previous one: its clock starts when the
    server turns to it, not at some later byte that never comes."""
    counts = limits()
    async with serving(guarded_protocol(counts)) as port, connection(port) as (reader, writer):
        writer.write(REQUEST + HEAD)
        answer = await read_until_closed(reader)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b"HTTP/1.1 408 " in answer
    assert counts.header_timeouts_total == 1


async def test_a_head_in_time_is_not_cut_by_a_slow_body() -> None:
    counts = limits()
    body = b"abc"
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    async with serving(guarded_protocol(counts)) as port, connection(port) as (reader, writer):
        writer.write(head)
        for byte in body:  # the body alone takes longer than the header timeout
            await asyncio.sleep(HEADER_TIMEOUT_S * 0.4)
            writer.write(bytes([byte]))
        head_again = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLOSE_BOUND_S)
        assert head_again.startswith(b"HTTP/1.1 200 ")
        assert await reader.readexactly(2) == b"ok"
    assert counts.header_timeouts_total == 0


async def test_an_answer_before_the_body_was_read_closes_the_connection() -> None:
    """An app that answers early (401 before the body, 413 past a limit) leaves a body
    uvicorn would go on discarding for as long as the client trickles it; the guard closes
    the connection as soon as the answer is out."""
    counts = limits()
    head = b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    async with serving(guarded_protocol(counts)) as port, connection(port) as (reader, writer):
        assert await exchange(reader, writer, head + b"abc") == b"HTTP/1.1 200 OK ok"
        started = time.monotonic()
        async with trickling(reader, writer, b"d" * 997):  # the rest of the body, a byte at a time
            assert await read_until_closed(reader) == b""
        assert time.monotonic() - started < LINGER_S + 1.0
    assert counts.header_timeouts_total == 0


async def test_without_the_guard_an_unread_body_trickles_on() -> None:
    head = b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    async with serving(H11Protocol) as port, connection(port) as (reader, writer):
        assert await exchange(reader, writer, head + b"abc") == b"HTTP/1.1 200 OK ok"
        async with trickling(reader, writer, b"d" * 997):
            await asyncio.sleep(KEEP_ALIVE_S + 1.5)
            assert not reader.at_eof()


async def test_an_address_cannot_open_more_than_its_cap() -> None:
    counts = limits(cap=3)
    async with serving(guarded_protocol(counts)) as port, contextlib.AsyncExitStack() as stack:
        first, second, third = [await stack.enter_async_context(connection(port)) for _ in range(3)]
        for reader, writer in (first, second, third):
            assert await exchange(reader, writer) == b"HTTP/1.1 200 OK ok"
        assert counts.open_connections(LOOPBACK) == 3

        async with connection(port) as (fourth_reader, _):
            assert await read_until_closed(fourth_reader) == b""
        assert counts.refused_total == 1
        for reader, writer in (first, second, third):
            assert await exchange(reader, writer) == b"HTTP/1.1 200 OK ok"

        first_writer = first[1]
        first_writer.close()
        await first_writer.wait_closed()
        await until(lambda: counts.open_connections(LOOPBACK) == 2, CLOSE_BOUND_S)
        async with connection(port) as replacement:
            assert await exchange(*replacement) == b"HTTP/1.1 200 OK ok"
            assert counts.open_connections(LOOPBACK) == 3
    await until(lambda: counts.open_by_address == {}, CLOSE_BOUND_S)
    assert counts.refused_total == 1
