"""PromQL pass-through to the Prometheus at PROMETHEUS_URL (`/api/v1/query`, `/api/v1/query_range`).

Queries go as form-encoded POSTs (Prometheus accepts both; POST has no URL
length limit for long expressions). Prometheus' JSON is handed back as it
came. Failures are classed so the API can answer precisely:

- `PrometheusNotConfigured`: no URL set (503);
- `PrometheusUnavailable`: no answer, a timeout, a 5xx or a reply that is not
  Prometheus JSON (503);
- `PrometheusRejected`: Prometheus refused the query itself (its 400 bad_data
  or 422 execution error), with its own message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx
import orjson

CONNECT_TIMEOUT_S: Final = 3.0
# Prometheus' own default query timeout is 2 minutes; an API caller should hear sooner.
QUERY_TIMEOUT_S: Final = 30.0


class PrometheusError(Exception):
    pass


class PrometheusNotConfigured(PrometheusError):
    def __init__(self) -> None:
        super().__init__("no Prometheus is configured (set PROMETHEUS_URL)")


class PrometheusUnavailable(PrometheusError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"Prometheus at {url} is unavailable: {reason}")


class PrometheusRejected(PrometheusError):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        self.status = status
        self.error_type = error_type
        self.message = message
        super().__init__(f"Prometheus rejected the query ({error_type}): {message}")


class PrometheusClient:
    def __init__(self, prometheus_url: str | None, *, timeout_s: float = QUERY_TIMEOUT_S) -> None:
        self.url = prometheus_url.rstrip("/") if prometheus_url else None
        self._timeout = httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S)
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        if self.url is not None and self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)

    async def stop(self) -> None:
        """Safe twice and before start()."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def query(self, params: Mapping[str, str]) -> dict[str, Any]:
        return await self._call("/api/v1/query", params)

    async def query_range(self, params: Mapping[str, str]) -> dict[str, Any]:
        return await self._call("/api/v1/query_range", params)

    async def _call(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        if self.url is None:
            raise PrometheusNotConfigured()
        client = self._client
        if client is None:
            raise PrometheusUnavailable(self.url, "client not started")
        try:
            response = await client.post(self.url + path, data=dict(params))
        except httpx.TimeoutException:
            raise PrometheusUnavailable(self.url, f"no answer within {self._timeout.read:g}s") from None
        except httpx.HTTPError as exc:
            raise PrometheusUnavailable(self.url, f"{type(exc).__name__}: {exc}") from None
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            raise PrometheusUnavailable(self.url, f"HTTP {response.status_code} without Prometheus JSON")
        if response.status_code in (400, 422) and body.get("status") == "error":
            raise PrometheusRejected(response.status_code, str(body.get("errorType", "")), str(body.get("error", "")))
        if response.status_code != 200:
            reason = body.get("error") or f"HTTP {response.status_code}"
            raise PrometheusUnavailable(self.url, str(reason))
        return body
