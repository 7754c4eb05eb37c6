"""What an alert says to a person: its summary and description, in words (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .lifecycle import Transition
from .rules import Rule, format_duration

__all__ = ["annotations", "format_value"]

_IN_WORDS: Final = {">": "above", ">=": "at or above", "<": "below", "<=": "at or below", "==": "equal to",
                    "!=": "not equal to"}
_SI: Final = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def format_value(value: float | None, unit: str = "") -> str:
    if value is None:
        return "no value"
    if unit == "H/s":
        for size, prefix in _SI:
            if abs(value) >= size:
                return f"{value / size:.3g} {prefix}H/s"
        return f"{value:.3g} H/s"
    text = f"{value:.4g}"
    return f"{text} {unit}".strip() if unit not in ("", "ratio", "bool") else text


def _series(labels: Mapping[str, str]) -> str:
    shown = [f"{name}={value}" for name, value in labels.items() if name not in ("alertname", "severity")]
    return " ".join(shown) if shown else "all series"


def annotations(rule: Rule, transition: Transition, unit: str = "") -> dict[str, str]:
    window = f" ({rule.window})" if rule.window else ""
    where = _series(transition.labels)
    words = _IN_WORDS.get(rule.operator, rule.operator)
    limit = format_value(transition.limit, unit)
    if rule.relative_to is not None:
        limit += f" ({rule.threshold:.0%} of its {rule.relative_to})"
    if rule.confidence is not None:
        words = f"with {rule.confidence:.0%} confidence {words}"
    description = (f"{rule.metric}{window} of {where} is {format_value(transition.value, unit)}, "
                   f"{words} {limit}")
    if rule.duration_ms:
        description += f" for {format_duration(rule.duration_ms)}"
    if transition.status == "resolved" and transition.reason:
        description += f"; resolved: {transition.reason}"
    out = {"summary": f"{rule.name}: {where}", "description": description + "."}
    if rule.description:
        out["rule_description"] = rule.description
    return {**rule.annotations, **out}
