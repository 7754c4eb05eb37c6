"""Numbers as the console shows them (console.js's `Chimera.fmt`), read back with their rounding.

A figure on the page is compared with the API's number within half a unit of
the last digit shown: "12.3 TH/s" stands for anything in [12.25, 12.35) TH/s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_HASHRATE_UNITS: Final = {"H/s": 1.0, "kH/s": 1e3, "MH/s": 1e6, "GH/s": 1e9, "TH/s": 1e12, "PH/s": 1e15,
                          "EH/s": 1e18}
_NUMBER: Final = re.compile(r"^\s*(-?[0-9][0-9,]*(?:\.([0-9]+))?)\s*(\S*)\s*$")


class NotAFigure(ValueError):
    """The text is not a number in the expected format (a dash, a placeholder, another unit)."""


@dataclass(frozen=True)
class Shown:
    """A figure as displayed: its value in base units and half of its last digit's unit."""

    value: float
    tolerance: float

    def matches(self, exact: float) -> bool:
        # A hair over half a digit: the browser and Python may round a tie differently.
        return abs(self.value - exact) <= self.tolerance * 1.001


def _parse(text: str) -> tuple[float, float, str]:
    found = _NUMBER.match(text.replace("\u202f", " ").replace("\u00a0", " "))
    if found is None:
        raise NotAFigure(f"not a number: {text!r}")
    number, decimals, unit = found.groups()
    value = float(number.replace(",", ""))
    return value, 0.5 * 10.0 ** -len(decimals or ""), unit


def hashrate(text: str) -> Shown:
    """"12.3 TH/s" -> 12.3e12 H/s, within 0.05e12."""
    value, half_digit, unit = _parse(text)
    if unit not in _HASHRATE_UNITS:
        raise NotAFigure(f"not a hashrate: {text!r}")
    scale = _HASHRATE_UNITS[unit]
    return Shown(value * scale, half_digit * scale)


def percent(text: str) -> Shown:
    """"98.2 %" -> the ratio 0.982, within 0.0005."""
    value, half_digit, unit = _parse(text)
    if unit != "%":
        raise NotAFigure(f"not a percentage: {text!r}")
    return Shown(value / 100, half_digit / 100)


def count(text: str) -> Shown:
    """"1,234" -> 1234, exactly."""
    value, _, unit = _parse(text)
    if unit:
        raise NotAFigure(f"not a count: {text!r}")
    return Shown(value, 0.0)
