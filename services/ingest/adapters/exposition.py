"""The /metrics body, rendered at most once per `ttl_s` however often it is asked for.

/metrics is open without a key, and rendering walks every series of the
registry (up to the custom-metrics cap): left alone, a scrape loop or a crowd
of clients could keep a core busy rendering the same text. So one render is
reused for `ttl_s` seconds, and callers that arrive while a render runs await
that render rather than start their own (single flight), so at most one
render runs at a time. A render that fails is handed to the callers awaiting
it and not kept: the next caller tries again.

The render runs in a thread (`asyncio.to_thread`), so a large registry does
not stall the event loop. The clock is injected (monotonic seconds).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest


class CachedExposition:
    def __init__(
        self, registry: CollectorRegistry, *, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl_s < 0:
            raise ValueError("ttl_s must be >= 0")
        self._registry = registry
        self._ttl_s = ttl_s  # 0: render for every caller (still one render at a time)
        self._clock = clock
        self._body: bytes | None = None
        self._rendered_at_s = 0.0  # when the kept body's render started
        self._inflight: asyncio.Task[bytes] | None = None

    async def render(self) -> bytes:
        """The registry in the Prometheus text format, at most `ttl_s` old."""
        if self._body is not None and self._clock() - self._rendered_at_s < self._ttl_s:
            return self._body
        task = self._inflight
        if task is None:
            task = asyncio.create_task(self._render(), name="metrics-exposition")
            # Reads the outcome so a failure whose waiters all went away is not
            # logged as "never retrieved"; waiters still get it through shield.
            task.add_done_callback(_consume_outcome)
            self._inflight = task
        # Shielded: a caller that goes away (a client disconnecting) must not
        # cancel the render the other callers are waiting for.
        return await asyncio.shield(task)

    async def _render(self) -> bytes:
        # Age counted from the start: the body shows the registry as it was then.
        started_s = self._clock()
        try:
            body = await asyncio.to_thread(generate_latest, self._registry)
        finally:
            # Cleared before any waiter resumes, so a failure is not reused and
            # the next caller starts a fresh render.
            self._inflight = None
        self._body, self._rendered_at_s = body, started_s
        return body


def _consume_outcome(task: asyncio.Task[bytes]) -> None:
    if not task.cancelled():
        task.exception()
