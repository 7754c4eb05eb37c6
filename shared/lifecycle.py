"""Parts with `start()`/`stop()` started in order and stopped in reverse order.

A part that fails to start stops the ones already started before the error
propagates; a part that fails to stop is logged and the rest still stop.
`stop()` is safe to call twice, and before `start()`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol

__all__ = ["Startable", "StartedParts"]

log = logging.getLogger(__name__)


class Startable(Protocol):
    async def start(self) -> Any: ...

    async def stop(self) -> Any: ...


class StartedParts:
    def __init__(self) -> None:
        self._started: list[Startable] = []

    async def start(self, parts: Iterable[Any]) -> None:
        """Start each part not started yet, in order."""
        try:
            for part in parts:
                if part in self._started:
                    continue
                await part.start()
                self._started.append(part)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the started parts, the last started first."""
        while self._started:
            part = self._started.pop()
            try:
                await part.stop()
            except Exception:  # noqa: BLE001 - keep stopping the rest, report each
                log.exception("stopping %s failed", type(part).__name__)
