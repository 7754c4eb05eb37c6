"""Durations as people write them in rules, channels and silences: `30s`, `5m`, `1h`, `2d`,
`250ms`, `0` (pure, standard library only). One grammar for every API that takes one."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["DURATION_PATTERN", "format_duration", "parse_duration_ms"]

# For request schemas: the same grammar as `parse_duration_ms`.
DURATION_PATTERN: Final = r"^(0|[0-9]{1,7}(ms|s|m|h|d))$"
_DURATION: Final = re.compile(r"(\d{1,7})(ms|s|m|h|d)")
_UNIT_MS: Final = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(text: str) -> int:
    """`30s`, `5m`, `1h`, `2d`, `250ms` or `0` in milliseconds; ValueError otherwise."""
    if text == "0":
        return 0
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 1h")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def format_duration(ms: int) -> str:
    """The largest whole unit: 300000 -> `5m`, 1500 -> `1500ms`, 0 -> `0s`."""
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_MS[unit]
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms" if ms else "0s"
