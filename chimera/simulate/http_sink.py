"""`HttpSink`: events to `POST /v1/events`, samples to `POST /api/metrics` and `/api/metrics/performance`.

Events go in batches (at most `max_batch_events` and `max_batch_bytes` each,
under the API's 10,000 events and 10 MiB). A 429 or 503 is retried after its
Retry-After, a timeout, a dropped connection or another 5xx after a doubling
back-off; every retry resends the same bytes, so the same `event_id`s and the
pool counts each event once. A 207 resends only the events its answer names.
Other 4xx answers are refusals: DeliveryError, nothing resent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Final, Self

import httpx
import orjson

from chimera.simulate.records import JsonEvent, MetricSample, PerformanceSample
from chimera.simulate.retry import Outcome, RetryPolicy, classify, retry_after_s
from chimera.simulate.sinks import DeliveryError, SinkStats, Sleep

__all__ = ["HttpSink"]

MAX_API_EVENTS: Final = 10_000
MAX_API_BYTES: Final = 10 * 1024 * 1024
_JSON: Final = {"Content-Type": "application/json"}


class HttpSink:
    def __init__(self, url: str, key: str, *, max_batch_events: int = 5_000,
                 max_batch_bytes: int = 4 * 1024 * 1024, timeout_s: float = 30.0,
                 policy: RetryPolicy | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        if not 1 <= max_batch_events <= MAX_API_EVENTS or not 1024 <= max_batch_bytes <= MAX_API_BYTES:
            raise ValueError(f"batches hold 1-{MAX_API_EVENTS} events and 1 KiB-10 MiB")
        self._client = httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout_s, transport=transport,
                                         headers={"Authorization": f"Bearer {key}"})
        self._max_events = max_batch_events
        self._max_bytes = max_batch_bytes
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self.stats = SinkStats()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send_events(self, events: Sequence[JsonEvent]) -> None:
        batch: list[bytes] = []
        size = 2
        for event in events:
            encoded = orjson.dumps(event)
            if batch and (len(batch) >= self._max_events or size + len(encoded) + 1 > self._max_bytes):
                await self._send_batch(batch)
                batch, size = [], 2
            batch.append(encoded)
            size += len(encoded) + 1
        if batch:
            await self._send_batch(batch)

    async def send_metrics(self, samples: Sequence[MetricSample]) -> None:
        for sample in samples:
            await self._post_until_done("/api/metrics", orjson.dumps(sample.body()))
            self.stats.metrics += 1

    async def send_performance(self, samples: Sequence[PerformanceSample]) -> None:
        for sample in samples:
            await self._post_until_done("/api/metrics/performance", orjson.dumps(sample.body()))
            self.stats.performance += 1

    async def _send_batch(self, pending: list[bytes]) -> None:
        policy = self._policy
        backoff = policy.backoff()
        last = ""
        for _ in range(policy.max_attempts):
            response, last = await self._post("/v1/events", b"[" + b",".join(pending) + b"]")
            delay: float | None = None
            if response is not None:
                outcome = classify(response.status_code)
                if outcome is Outcome.DONE:
                    self.stats.events += len(pending)
                    return
                if outcome is Outcome.REFUSED:
                    raise _refused("/v1/events", response)
                if outcome is Outcome.PARTIAL:
                    missing = _named_indices(response, len(pending))
                    self.stats.events += len(pending) - len(missing)
                    if not missing:
                        return
                    pending = [pending[i] for i in missing]
                delay = retry_after_s(response.headers.get("Retry-After"))
            self.stats.retries += 1
            await self._sleep(policy.delay_s(backoff, delay))
        raise DeliveryError(f"POST /v1/events: gave up after {policy.max_attempts} attempts ({last})")

    async def _post_until_done(self, path: str, body: bytes) -> None:
        policy = self._policy
        backoff = policy.backoff()
        last = ""
        for _ in range(policy.max_attempts):
            response, last = await self._post(path, body)
            delay: float | None = None
            if response is not None:
                outcome = classify(response.status_code)
                if outcome in (Outcome.DONE, Outcome.PARTIAL):  # one sample: nothing partial about it
                    return
                if outcome is Outcome.REFUSED:
                    raise _refused(path, response)
                delay = retry_after_s(response.headers.get("Retry-After"))
            self.stats.retries += 1
            await self._sleep(policy.delay_s(backoff, delay))
        raise DeliveryError(f"POST {path}: gave up after {policy.max_attempts} attempts ({last})")

    async def _post(self, path: str, body: bytes) -> tuple[httpx.Response | None, str]:
        """The answer (None when there was none) and a few words on it for the final error."""
        self.stats.requests += 1
        try:
            response = await self._client.post(path, content=body, headers=_JSON)
        except httpx.TransportError as exc:
            # Connection refused, reset or timed out: the outcome is unknown, and resending is safe.
            return None, f"{type(exc).__name__}: {exc}"
        self.stats.statuses[response.status_code] += 1
        return response, f"last answer {response.status_code}"


def _refused(path: str, response: httpx.Response) -> DeliveryError:
    text = response.text[:2000]
    return DeliveryError(f"POST {path} refused with {response.status_code}: {text}",
                         status=response.status_code, body=text)


def _named_indices(response: httpx.Response, count: int) -> list[int]:
    """Indices of the events a 207 answer says were not taken (`details`/`failed`/`rejected`: [{index}])."""
    try:
        body = response.json()
    except ValueError:
        return list(range(count))  # an answer we cannot read: resend everything (dedup makes it safe)
    named: set[int] = set()
    if isinstance(body, dict):
        for key in ("details", "failed", "rejected", "errors"):
            items = body.get(key)
            if not isinstance(items, list):
                continue
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("index"), int):
                    continue
                if item.get("retriable") is False:
                    raise _refused("/v1/events", response)
                if 0 <= item["index"] < count:
                    named.add(item["index"])
    return sorted(named)
