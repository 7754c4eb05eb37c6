"""The public API against a hostile client, over real HTTP (docs/ingest-security.md).

Each test names the class of weakness it guards against; each failed on the
service before the guard (bodies read before keys, no body timeout, failed
authentications unlimited, Host trusted in redirects, missing headers,
scripts loaded from outside, keys undeclared in the OpenAPI document).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from typing import Any

import httpx
import pytest

from services.ingest.config import IngestSettings
from shared.http.guard import BODY_LIMIT_EXTENSION
from tests.conftest import Endpoints, own_schema, unique_name
from tests.integration.ingest.conftest import Api, make_settings, serve
from tests.integration.ingest.helpers import read_answer

pytestmark = pytest.mark.integration

BODY_TIMEOUT_S = 1.0
FAILURE_BURST = 5


@pytest.fixture(scope="module")
def module_settings_overrides() -> dict[str, Any]:
    return {"http_body_timeout_s": BODY_TIMEOUT_S, "auth_failures_burst": FAILURE_BURST,
            "auth_failures_per_second": 0.2, "api_key_cache_ttl_s": 0.0}


async def _operations(api: Api) -> list[tuple[str, str, dict[str, Any]]]:
    document = (await api.client.get("/openapi.json")).json()
    return [(method.upper(), path, operation) for path, operations in document["paths"].items()
            for method, operation in operations.items()]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "bc1qhostile", path)


def _needs_key(operation: dict[str, Any]) -> bool:
    return {} not in operation.get("security", [{}])


async def _raw_request(port: int, head: bytes, body_chunks: list[bytes], *, pause_s: float = 0.0) -> bytes:
    """Send a request by hand (the body maybe never finished); return what the server answers before closing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.create_task(read_answer(reader))
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(head)
            for chunk in body_chunks:
                if answer.done():
                    break
                writer.write(chunk)
                await writer.drain()
                if pause_s:
                    await asyncio.sleep(pause_s)
        return await asyncio.wait_for(answer, 10)
    finally:
        answer.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


# --- 1. bodies: keys before bodies, every route bounded -----------------------------------------


async def test_every_route_with_a_body_documents_its_limit(module_api: Api) -> None:
    with_body = [(m, p, op) for m, p, op in await _operations(module_api) if "requestBody" in op]
    assert len(with_body) >= 6
    for method, path, operation in with_body:
        limit = operation[BODY_LIMIT_EXTENSION]
        expected = module_api.container.settings.max_body_bytes if path == "/v1/events" else None
        assert isinstance(limit, int) and limit > 0, (method, path)
        assert expected is None or limit == expected
        assert f"at most {limit} bytes" in operation["description"]


async def test_a_malformed_body_without_a_key_is_401_not_422(module_api: Api) -> None:
    for method, path, operation in await _operations(module_api):
        if "requestBody" not in operation or not _needs_key(operation):
            continue
        answer = await module_api.client.request(method, _concrete(path), content=b"{not json",
                                                 headers={"Content-Type": "application/json"})
        assert answer.status_code == 401, (method, path, answer.text)


async def test_a_body_over_the_limit_is_413_with_or_without_reading_it(module_api: Api) -> None:
    headers = {**await module_api.headers("ingest", "read", "admin"), "Content-Type": "application/json"}
    for method, path, operation in await _operations(module_api):
        if "requestBody" not in operation:
            continue
        limit = operation[BODY_LIMIT_EXTENSION]
        start = (f"{method} {_concrete(path)} HTTP/1.1\r\nHost: x\r\nAuthorization: {headers['Authorization']}\r\n"
                 "Content-Type: application/json\r\n")
        # A declared length over the limit: 413 before a byte of the body is sent.
        declared = await _raw_request(module_api.settings.http_port,
                                      f"{start}Content-Length: {limit + 1}\r\n\r\n".encode(), [])
        assert declared.startswith(b"HTTP/1.1 413 "), (method, path, declared[:200])
        assert b'"field":"body"' in declared

        # Chunked, no Content-Length: refused once the bytes read pass the limit, the rest never read.
        head = f"{start}Transfer-Encoding: chunked\r\n\r\n".encode()
        chunk = b"10000\r\n" + b" " * 65536 + b"\r\n"
        streamed = await _raw_request(module_api.settings.http_port, head, [chunk] * (limit // 65536 + 64))
        assert streamed.startswith(b"HTTP/1.1 413 "), (method, path, streamed[:200])


async def test_without_a_key_a_huge_declared_body_is_refused_before_any_is_sent(module_api: Api) -> None:
    port = module_api.settings.http_port
    head = (b"POST /api/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 419430400\r\n\r\n")
    started = time.monotonic()
    answer = await _raw_request(port, head, [])
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert time.monotonic() - started < 5  # answered, and the connection closed, without the body


async def test_a_body_slower_than_the_body_timeout_is_408(module_api: Api) -> None:
    key = await module_api.key("ingest")
    port = module_api.settings.http_port
    body = b'{"name": "slow_metric", "value": 1.0}'
    head = (f"POST /api/metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    started = time.monotonic()
    answer = await _raw_request(port, head, [bytes([b]) for b in body], pause_s=0.2)
    elapsed_s = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert BODY_TIMEOUT_S <= elapsed_s < BODY_TIMEOUT_S + 3
    assert (await module_api.client.get("/healthz")).status_code == 200


# --- 4. failed authentications limited per address, and counted ---------------------------------


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(f"{name}{{{wanted}}}" if labels else name) + r" ([0-9.e+]+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


async def test_failed_authentications_block_the_address_then_count(endpoints: Endpoints) -> None:
    async with own_schema(endpoints) as schema:
        settings = make_settings(endpoints, unique_name("t") + ".", schema, auth_failures_burst=FAILURE_BURST,
                                 auth_failures_per_second=0.2, metrics_cache_s=0.0)
        async for api in serve(settings):
            good = await api.headers("read")
            statuses = []
            for _ in range(FAILURE_BURST + 3):
                bad = {"Authorization": f"Bearer chm_{secrets.token_urlsafe(32)}"}
                statuses.append((await api.client.get("/api/pool/stats", headers=bad)).status_code)
            assert statuses == [401] * FAILURE_BURST + [429] * 3
            # While blocked, the address gets 429 whatever key it shows: a guesser learns nothing.
            blocked = await api.client.get("/api/pool/stats", headers=good)
            assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
            # Spoofed X-Forwarded-For is not believed from an untrusted peer.
            spoofed = await api.client.get("/api/pool/stats", headers={**good, "X-Forwarded-For": "198.51.100.9"})
            assert spoofed.status_code == 429
            exposition = (await api.client.get("/metrics")).text
            assert _metric(exposition, "chimera_api_auth_failures_total", reason="unknown") == FAILURE_BURST
            assert _metric(exposition, "chimera_api_rate_limited_total", limit="auth_failures") == 5
            # No key at all is counted, not limited.
            assert (await api.client.get("/api/pool/stats")).status_code == 401
            exposition = (await api.client.get("/metrics")).text
            assert _metric(exposition, "chimera_api_auth_failures_total", reason="missing") == 1


async def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_limit(endpoints: Endpoints) -> None:
    async with own_schema(endpoints) as schema:
        settings = make_settings(endpoints, unique_name("t") + ".", schema, auth_failures_burst=2,
                                 auth_failures_per_second=0.2, http_trusted_proxies="127.0.0.1")
        async for api in serve(settings):
            def bad(address: str) -> dict[str, str]:
                return {"Authorization": "Bearer chm_nope", "X-Forwarded-For": address}

            first = [(await api.client.get("/api/pool/stats", headers=bad("198.51.100.1"))).status_code
                     for _ in range(3)]
            assert first == [401, 401, 429]
            second = await api.client.get("/api/pool/stats", headers=bad("198.51.100.2"))
            assert second.status_code == 401


# --- 5. no redirect built from the Host header ---------------------------------------------------


async def test_a_trailing_slash_is_404_not_a_redirect_to_the_host_header(module_api: Api) -> None:
    headers = {**await module_api.headers("read"), "Host": "attacker.example"}
    for path in ("/api/pool/stats/", "/healthz/", "/v1/events/"):
        answer = await module_api.client.get(path, headers=headers)
        assert answer.status_code in (404, 405), (path, answer.status_code)
        assert "location" not in answer.headers


# --- 8. headers, local docs, keys declared in the OpenAPI document --------------------------------


async def test_api_answers_carry_nosniff_and_no_store(module_api: Api) -> None:
    read = await module_api.headers("read")
    answers = [
        await module_api.client.get("/api/pool/stats", headers=read),  # 200
        await module_api.client.get("/api/pool/stats"),  # 401
        await module_api.client.get("/nowhere"),  # 404
        await module_api.client.get("/api/pool/stats?pool=%20", headers=read),  # 422
        await module_api.client.get("/openapi.json"),
        await module_api.client.get("/metrics"),
    ]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer.request.url
        assert answer.headers["cache-control"] == "no-store", answer.request.url


async def test_the_docs_page_loads_nothing_from_outside(module_api: Api) -> None:
    page = await module_api.client.get("/docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self' 'sha256-" in policy
    html = page.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) >= 3
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        fetched = await module_api.client.get(asset)
        assert fetched.status_code == 200 and len(fetched.content) > 0, asset
    assert (await module_api.client.get("/redoc")).status_code == 404


async def test_docs_can_be_turned_off(endpoints: Endpoints) -> None:
    async with own_schema(endpoints) as schema:
        settings = make_settings(endpoints, unique_name("t") + ".", schema, api_docs="off")
        async for api in serve(settings):
            assert (await api.client.get("/docs")).status_code == 404
            assert (await api.client.get("/docs/assets/swagger-ui-bundle.js")).status_code == 404
            assert (await api.client.get("/openapi.json")).status_code == 200


async def test_every_route_that_needs_a_key_declares_it(module_api: Api) -> None:
    document = (await module_api.client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    declared = 0
    for method, path, operation in await _operations(module_api):
        content = b"{}" if "requestBody" in operation else None
        answer = await module_api.client.request(method, _concrete(path), content=content,
                                                 headers={"Content-Type": "application/json"})
        if _needs_key(operation):
            declared += 1
            assert operation["security"] == [{"bearerAuth": []}], (method, path)
            assert answer.status_code == 401, (method, path, answer.status_code)
        else:
            assert answer.status_code != 401, (method, path)
    assert declared >= 15


# --- 7. /metrics on a listener of its own ----------------------------------------------------------


async def test_metrics_on_their_own_port_leave_the_public_one(endpoints: Endpoints) -> None:
    from services.ingest.__main__ import metrics_server, serve_all
    from services.ingest.api.app import create_app, server_config
    from tests.integration.conftest import free_port

    async with own_schema(endpoints) as schema:
        settings: IngestSettings = make_settings(endpoints, unique_name("t") + ".", schema,
                                                 metrics_port=free_port(), metrics_cache_s=0.0)
        from shared.db.migrate import migrate_database
        await migrate_database(settings)
        app = create_app(settings)
        public = __import__("uvicorn").Server(server_config(app, settings, log_level="warning"))
        follower = metrics_server(app, settings)
        assert follower is not None
        task = asyncio.create_task(serve_all(public, follower))
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                base = f"http://127.0.0.1:{settings.http_port}"
                for _ in range(200):
                    with contextlib.suppress(httpx.TransportError):
                        if follower.started and (await client.get(f"{base}/healthz")).status_code == 200:
                            break
                    await asyncio.sleep(0.05)
                assert (await client.get(f"{base}/metrics")).status_code == 404
                private = await client.get(f"http://{settings.metrics_host}:{settings.metrics_port}/metrics")
                assert private.status_code == 200
                assert "chimera_http_requests_in_flight" in private.text
                assert private.headers["x-content-type-options"] == "nosniff"
        finally:
            public.should_exit = True
            await task
        assert follower.started and task.done()
