"""PromQL pass-through, against a small real Prometheus stand-in on loopback (real HTTP, canned JSON)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.ingest.adapters.prometheus import PrometheusClient, PrometheusUnavailable
from tests.conftest import Endpoints
from tests.integration.ingest.conftest import Api, free_port, make_settings, serve

pytestmark = pytest.mark.integration

VECTOR = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"__name__": "up", "job": "ingest"}, "value": [1767225600.0, "1"]}]}}
MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": [
    {"metric": {"job": "ingest"}, "values": [[1767225600, "1"], [1767225615, "1"]]}]}}
BAD_DATA = {"status": "error", "errorType": "bad_data",
            "error": 'invalid parameter "query": 1:4: parse error: unclosed left parenthesis'}


@dataclass
class FakePrometheus:
    url: str
    received: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def fake_app(fake: FakePrometheus) -> Starlette:
    async def handle(request: Request) -> Response:
        # Prometheus takes form-encoded POST bodies (and GET query strings); parsed by hand, no multipart library.
        form = dict(parse_qsl((await request.body()).decode())) or dict(request.query_params)
        fake.received.append((request.url.path, form))
        query = form.get("query", "")
        if query == "sum(":
            return JSONResponse(BAD_DATA, status_code=400)
        if query == "too_many_samples":
            return JSONResponse({"status": "error", "errorType": "execution",
                                 "error": "query processing would load too many samples"}, status_code=422)
        if query == "overloaded":
            return JSONResponse({"status": "error", "errorType": "unavailable", "error": "too many queries"},
                                status_code=503)
        if query == "not_prometheus":
            return PlainTextResponse("<html>proxy error</html>", status_code=502)
        return JSONResponse(MATRIX if request.url.path.endswith("query_range") else VECTOR)

    return Starlette(routes=[Route("/prom/api/v1/query", handle, methods=["GET", "POST"]),
                             Route("/prom/api/v1/query_range", handle, methods=["GET", "POST"])])


@pytest.fixture(scope="module")
async def prometheus() -> AsyncIterator[FakePrometheus]:
    port = free_port()
    fake = FakePrometheus(f"http://127.0.0.1:{port}/prom/")  # a path prefix, as behind a proxy
    server = uvicorn.Server(uvicorn.Config(fake_app(fake), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "fake Prometheus did not start"
        await asyncio.sleep(0.02)
    try:
        yield fake
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
def module_settings_overrides(prometheus: FakePrometheus) -> dict[str, Any]:
    return {"prometheus_url": prometheus.url}


async def test_instant_query_passes_through(module_api: Api, prometheus: FakePrometheus) -> None:
    response = await module_api.client.get(
        "/api/query", params={"query": 'up{job="ingest"} + 0', "time": "1767225600"},
        headers=await module_api.headers("read"))
    assert response.status_code == 200, response.text
    assert response.json() == VECTOR
    assert prometheus.received[-1] == ("/prom/api/v1/query", {"query": 'up{job="ingest"} + 0', "time": "1767225600"})


async def test_range_query_passes_through(module_api: Api, prometheus: FakePrometheus) -> None:
    params = {"query": "rate(x[5m])", "start": "2026-01-01T00:00:00Z", "end": "1767225900", "step": "15s"}
    response = await module_api.client.get("/api/query_range", params=params,
                                           headers=await module_api.headers("read"))
    assert response.status_code == 200, response.text
    assert response.json() == MATRIX
    assert prometheus.received[-1] == ("/prom/api/v1/query_range", params)


@pytest.mark.parametrize(
    ("query", "status", "fragment"),
    [("sum(", 400, "unclosed left parenthesis"), ("too_many_samples", 422, "too many samples"),
     ("overloaded", 503, "too many queries"), ("not_prometheus", 503, "without Prometheus JSON")],
)
async def test_prometheus_errors(module_api: Api, query: str, status: int, fragment: str) -> None:
    response = await module_api.client.get("/api/query", params={"query": query},
                                           headers=await module_api.headers("read"))
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "details"} and fragment in body["error"]
    if status != 503:
        assert body["details"][0]["field"] == "query.query"


async def test_parameters_and_scope(module_api: Api, prometheus: FakePrometheus) -> None:
    before = len(prometheus.received)
    read = await module_api.headers("read")
    assert (await module_api.client.get("/api/query")).status_code == 401
    assert (await module_api.client.get("/api/query", params={"query": "up"},
                                        headers=await module_api.headers("ingest"))).status_code == 403
    missing = await module_api.client.get("/api/query", headers=read)
    assert missing.status_code == 422 and missing.json()["details"][0]["field"] == "query.query"
    no_step = await module_api.client.get("/api/query_range", params={"query": "up", "start": "1", "end": "2"},
                                          headers=read)
    assert no_step.status_code == 422 and no_step.json()["details"][0]["field"] == "query.step"
    assert len(prometheus.received) == before  # nothing reached Prometheus


async def test_503_without_prometheus_url(endpoints: Endpoints, topic_prefix: str, db_schema: str) -> None:
    settings = make_settings(endpoints, topic_prefix, db_schema, prometheus_url=None)
    async for api in serve(settings):
        for path, params in (("/api/query", {"query": "up"}),
                             ("/api/query_range", {"query": "up", "start": "1", "end": "2", "step": "1"})):
            response = await api.client.get(path, params=params, headers=await api.headers("read"))
            assert response.status_code == 503
            assert "PROMETHEUS_URL" in response.json()["error"]
            assert response.headers["Retry-After"]


async def test_unreachable_prometheus_is_unavailable() -> None:
    client = PrometheusClient(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    await client.start()
    try:
        with pytest.raises(PrometheusUnavailable) as caught:
            await client.query({"query": "up"})
        assert "ConnectError" in caught.value.reason
    finally:
        await client.stop()
        await client.stop()
