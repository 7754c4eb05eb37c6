"""Ten clients sending 100 MiB bodies, with and without keys, to a live ingest process: its
peak RSS stays under 300 MB (security issue: bodies were buffered before the key was checked;
a 400 MiB body with no key took the process from ~130 MB to ~1.5 GB).

Every body route gets them, declared (Content-Length) and streamed (chunked, no length), so
both the early refusal and the byte-counting one are exercised; every answer is 401 or 413
and the service is healthy afterwards. The peak is the kernel's high-water mark (VmHWM).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import httpx
import pytest

from tests.e2e.conftest import LiveService
from tests.integration.ingest.helpers import read_answer

pytestmark = pytest.mark.e2e

CLIENTS: Final = 10
BODY_BYTES: Final = 100 * 1024 * 1024
CHUNK: Final = b" " * (1024 * 1024)
PEAK_RSS_LIMIT_BYTES: Final = 300 * 1000 * 1000
ROUTES: Final = ("/v1/events", "/api/metrics", "/api/metrics/miner", "/api/dashboards")


def peak_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


async def send_big_body(port: int, path: str, token: str | None, *, declared: bool) -> int:
    """POST 100 MiB to `path` until the server answers; the answer's status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.create_task(read_answer(reader))
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    framing = f"Content-Length: {BODY_BYTES}\r\n" if declared else "Transfer-Encoding: chunked\r\n"
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n{framing}\r\n"
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode())
            sent = 0
            while sent < BODY_BYTES and not answer.done():
                writer.write(CHUNK if declared else b"100000\r\n" + CHUNK + b"\r\n")
                await writer.drain()
                sent += len(CHUNK)
        received = await asyncio.wait_for(answer, 30)
    finally:
        answer.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert received.startswith(b"HTTP/1.1 "), received[:100]
    return int(received.split(b" ", 2)[1])


async def test_ten_clients_with_100_mib_bodies_leave_rss_under_300_mb(live_service: LiveService) -> None:
    before = peak_rss_bytes(live_service.pid)
    statuses: list[tuple[str, str, bool, int]] = []
    for token in (None, live_service.token):
        for declared in (True, False):
            for path in ROUTES:
                answers = await asyncio.gather(*(
                    send_big_body(live_service.port, path, token, declared=declared) for _ in range(CLIENTS)))
                statuses += [(path, "key" if token else "no key", declared, status) for status in answers]
    after = peak_rss_bytes(live_service.pid)
    for path, who, declared, status in statuses:
        assert status == (413 if who == "key" else 401), (path, who, declared, status)
    assert after < PEAK_RSS_LIMIT_BYTES, f"peak RSS {after / 1e6:.0f} MB (was {before / 1e6:.0f} MB before)"
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{live_service.base_url}/healthz")).status_code == 200
    print(f"\npeak RSS before {before / 1e6:.0f} MB, after {len(statuses)} 100 MiB bodies {after / 1e6:.0f} MB")
