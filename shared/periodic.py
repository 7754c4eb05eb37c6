"""An owned periodic task: one object starts it, the same object stops it.

`step()` runs every `interval_s` (measured from the end of the previous step,
so a slow step never piles up runs). A step that raises is logged with its
exception and reported to `on_error`; the loop goes on at the next interval,
which is the retry. `stop()` cancels a step in progress; safe twice and before
`start()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from shared.background import cancel_and_wait, spawn

log = logging.getLogger(__name__)


class PeriodicTask:
    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[object]],
        interval_s: float,
        *,
        on_error: Callable[[Exception], None] | None = None,
        run_at_start: bool = True,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"{name}: interval_s must be > 0, got {interval_s}")
        self.name = name
        self.interval_s = interval_s
        self._step = step
        self._on_error = on_error
        self._run_at_start = run_at_start
        self._task: asyncio.Task[None] | None = None
        self.runs = 0
        self.failures = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = spawn(self._loop(), self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _loop(self) -> None:
        if not self._run_at_start:
            await asyncio.sleep(self.interval_s)
        while True:
            try:
                await self._step()
                self.runs += 1
            except Exception as exc:  # a periodic job must outlive one failed run
                self.failures += 1
                log.warning("%s failed (retrying in %gs): %r", self.name, self.interval_s, exc, exc_info=exc)
                if self._on_error is not None:
                    self._on_error(exc)
            await asyncio.sleep(self.interval_s)
