"""Counting a batch's events by type, for telemetry. Pure.

Labels are bounded: anything but the three contract types counts as "other",
so a client sending random `type` values cannot create metric series.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final

EVENT_TYPES: Final = ("share", "block", "miner")
OTHER: Final = "other"


def label_of(kind: Any) -> str:
    return kind if kind in EVENT_TYPES else OTHER


def count_by_type(events: Iterable[Any]) -> Counter[str]:
    """Per-type counts of decoded events (objects with a `type` attribute)."""
    return Counter(event.type for event in events)


def census_of(items: Iterable[Any]) -> Counter[str]:
    """Per-type counts of a refused body's parsed items, whatever they are.

    The items are what the body's JSON held (None for a line that did not
    parse): anything but an object with a contract `type` counts as "other".
    """
    return Counter(label_of(item.get("type") if isinstance(item, dict) else None) for item in items)


class _NonFinite:
    """Stands in for a NaN or infinite number while locating them."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def _non_finite_constant(literal: str) -> _NonFinite:
    return _NonFinite(literal)


def _non_finite_float(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def _key_text(key: str) -> str:
    # Python's json decodes "\ud800" in a key to a lone surrogate, which has no UTF-8
    # form: the 422 naming the field could not be encoded (a 500). Shown as the escape.
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def _walk(root: Any) -> list[tuple[str, str]]:
    """(dotted path, literal) of every stand-in under `root`; iterative, as bodies may nest deeply."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[Any, tuple[str, ...]]] = [(root, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, _NonFinite):
            found.append((".".join(path), value.literal))
        elif isinstance(value, dict):
            stack.extend((item, (*path, _key_text(key))) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((item, (*path, str(i))) for i, item in reversed(list(enumerate(value))))
    return found


def non_finite_numbers(raw: bytes, *, ndjson: bool) -> list[tuple[int, str, str]]:
    """(event index, field, literal) of each NaN, Infinity or overflowing number in a body.

    JSON has no NaN or Infinity, so the fast parser refuses such a body
    without saying where; this finds them so the 422 can name the field.
    Python's json module accepts those literals, which is what makes this
    possible. Only on the rejection path.
    """
    def parse(chunk: bytes) -> Any:
        return json.loads(chunk, parse_constant=_non_finite_constant, parse_float=_non_finite_float)

    out: list[tuple[int, str, str]] = []
    items: list[Any] = []
    if ndjson:
        for line in raw.split(b"\n"):
            if line.strip():
                try:
                    items.append(parse(line))
                except (ValueError, RecursionError):
                    items.append(None)  # keeps indices aligned; the line's own error stands
    else:
        try:
            parsed = parse(raw)
        except (ValueError, RecursionError):
            return out
        items = parsed if isinstance(parsed, list) else []
    for index, item in enumerate(items):
        out.extend((index, field, literal) for field, literal in _walk(item))
    return out
