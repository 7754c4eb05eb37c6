"""Doubling delays between retries, capped: the one retry rhythm of every service."""

from __future__ import annotations

__all__ = ["Backoff"]


class Backoff:
    """`next()` gives the delay before the next attempt; `reset()` after a success."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self._initial_s, self._max_s = initial_s, max_s
        self._next_s = initial_s

    def next(self) -> float:
        delay, self._next_s = self._next_s, min(self._next_s * 2, self._max_s)
        return delay

    def reset(self) -> None:
        self._next_s = self._initial_s
