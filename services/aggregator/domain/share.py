"""What the domain reads from a share event.

Both the contract's model (`shared.events.ShareEvent`) and the hot path's
lighter `ValidShare` (shared/share_checks.py) have these
attributes; the domain accepts either and never builds one itself.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Share"]


class Share(Protocol):
    @property
    def event_id(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def ts_ms(self) -> int: ...

    @property
    def pool(self) -> str: ...

    @property
    def miner(self) -> str: ...

    @property
    def worker(self) -> str: ...

    @property
    def difficulty(self) -> float: ...

    @property
    def status(self) -> str: ...

    @property
    def actual_difficulty(self) -> float | None: ...
