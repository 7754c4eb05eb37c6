"""How a test waits for something another task or process does: poll until it holds.

One helper for every suite, so a timeout reads the same everywhere and says what was
awaited. `check` may return a value or an awaitable (a database query); the first
truthy value is returned, so a test can wait for a row and then use it.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

__all__ = ["until"]


async def until(check: Callable[[], Any], timeout_s: float = 60.0, what: str | Callable[[], str] = "the condition",
                *, every_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got
        if time.monotonic() >= deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"waited {timeout_s:g}s for {described}")
        await asyncio.sleep(every_s)
