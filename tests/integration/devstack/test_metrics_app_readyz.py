"""/readyz of shared/http/metrics_app.py: the service's own check decides, else serving is ready."""

from __future__ import annotations

import httpx
import pytest

from shared.http.metrics_app import metrics_app

pytestmark = pytest.mark.unit


class FlippingCheck:
    """A readiness check the test turns on and off, counting how often it is asked."""

    def __init__(self) -> None:
        self.answer = False
        self.asked = 0

    async def __call__(self) -> bool:
        self.asked += 1
        return self.answer


def _client(ready: FlippingCheck | None) -> httpx.AsyncClient:
    app = metrics_app("test", lambda: b"# nothing\n", ready)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service")


async def test_without_a_check_a_serving_process_is_ready() -> None:
    async with _client(None) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_the_check_is_asked_at_every_request() -> None:
    check = FlippingCheck()
    async with _client(check) as client:
        not_ready = await client.get("/readyz")
        check.answer = True
        ready = await client.get("/readyz")
        check.answer = False
        again = await client.get("/readyz")
        # Liveness and the exposition do not depend on readiness.
        health = await client.get("/healthz")
        metrics = await client.get("/metrics")
    assert not_ready.status_code == 503
    assert not_ready.json()["status"] == "not ready"
    assert not_ready.headers["Retry-After"] == "5"
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    assert again.status_code == 503
    assert check.asked == 3
    assert health.status_code == 200
    assert metrics.status_code == 200 and metrics.text == "# nothing\n"
