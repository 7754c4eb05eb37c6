"""What the demo shows, as a value (`DemoState`) and its rendering (`render`), no I/O.

The figures come from the aggregator's latest pool record on
`chimera.snapshots` (docs/aggregator.md): hashrate by window with its 95%
interval, shares/s, efficiency, active miners and workers, blocks, round
effort and luck. A window that reaches back before the pool's first share
says so ("filling, 2 of 5 minutes") instead of a figure that only looks low:
windows divide by their full length (the contract's formula).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from rich.console import Group
from rich.table import Table
from rich.text import Text

__all__ = ["WINDOWS", "DemoState", "Notice", "filling", "human_hashrate", "render"]

WINDOWS: Final = (("1m", 1), ("5m", 5), ("15m", 15), ("1h", 60), ("24h", 1_440))
_UNITS: Final = ((1e18, "EH/s"), (1e15, "PH/s"), (1e12, "TH/s"), (1e9, "GH/s"), (1e6, "MH/s"), (1e3, "kH/s"))


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification the demo's webhook receiver got."""

    at: str  # HH:MM:SS
    status: str  # firing or resolved
    alerts: tuple[str, ...]  # "alertname (labels)"


@dataclass
class DemoState:
    first_share_ms: int | None = None
    pool: Mapping[str, Any] | None = None  # the latest pool snapshot record's figures
    pool_as_of_ms: int | None = None
    firing: Sequence[Mapping[str, Any]] = ()  # GET /api/alerts?status=firing
    notices: list[Notice] = field(default_factory=list)
    lag: Mapping[str, int | None] = field(default_factory=dict)  # service -> records behind (None: unknown)
    posted: int = 0
    refused: int = 0
    truth_hashrate_hs: float | None = None


def human_hashrate(hs: float | None) -> str:
    if hs is None:
        return "-"
    for size, unit in _UNITS:
        if abs(hs) >= size:
            return f"{hs / size:.2f} {unit}"
    return f"{hs:.0f} H/s"


def filling(window_minutes: int, first_share_ms: int | None, as_of_ms: int | None) -> int | None:
    """Complete minutes of data in the window, when fewer than its length; None when it is full.

    Windows are complete minutes before `as_of_ms`; the pool's first minute counts from the
    minute its first share fell in."""
    if first_share_ms is None or as_of_ms is None:
        return None
    have = max(0, (as_of_ms - first_share_ms // 60_000 * 60_000) // 60_000)
    return int(have) if have < window_minutes else None


def _window_row(name: str, minutes: int, figures: Mapping[str, Any], state: DemoState) -> list[str]:
    short = filling(minutes, state.first_share_ms, state.pool_as_of_ms)
    if short is not None:
        return [name, f"filling, {short} of {minutes} minutes", "", ""]
    value = (figures.get("hashrate") or {}).get(name)
    lower = (figures.get("hashrate_lower") or {}).get(name)
    upper = (figures.get("hashrate_upper") or {}).get(name)
    shares = (figures.get("shares") or {}).get(name)
    band = f"{human_hashrate(lower)} .. {human_hashrate(upper)}" if lower is not None else "-"
    return [name, human_hashrate(value), band, "-" if shares is None else f"{shares:,}"]


def _figures(state: DemoState) -> Table:
    table = Table(title="Pool main", expand=True)
    for column in ("window", "hashrate", "95% interval", "shares"):
        table.add_column(column, justify="right" if column != "window" else "left")
    figures = state.pool or {}
    for name, minutes in WINDOWS:
        table.add_row(*_window_row(name, minutes, figures, state))
    return table


def _summary(state: DemoState) -> Text:
    f = state.pool or {}
    rate = (f.get("shares_per_second") or {}).get("1m")
    efficiency = (f.get("efficiency") or {}).get("15m")
    luck = f.get("luck") or {}
    effort = f.get("round_effort")
    parts = [
        f"shares/s {rate:.2f}" if isinstance(rate, int | float) else "shares/s -",
        f"active miners {f.get('active_miners', '-')}, workers {f.get('active_workers', '-')}",
        f"efficiency {efficiency:.1%}" if isinstance(efficiency, int | float) else "efficiency -",
        f"blocks {f.get('blocks_found', '-')}",
        f"round effort {effort:.1%}" if isinstance(effort, int | float) else "round effort -",
        "luck " + " ".join(f"{n}:{v:.2f}" if isinstance(v, int | float) else f"{n}:-"
                           for n, v in sorted(luck.items(), key=lambda kv: int(kv[0]))) if luck else "luck -",
        f"simulated truth {human_hashrate(state.truth_hashrate_hs)}",
        f"events posted {state.posted:,} (refused {state.refused:,})",
    ]
    return Text("  |  ".join(parts))


def _alerts(state: DemoState) -> Table:
    table = Table(title=f"Firing alerts ({len(state.firing)})", expand=True)
    table.add_column("alert")
    table.add_column("labels")
    table.add_column("since")
    for alert in list(state.firing)[:8]:
        labels = alert.get("labels") or {}
        shown = ", ".join(f"{k}={v}" for k, v in labels.items() if k not in ("alertname", "severity"))
        # Text, not markup: names come from pool nodes and miners.
        table.add_row(Text(str(alert.get("name", ""))), Text(shown), Text(str(alert.get("fired_at") or "")))
    return table


def _notices(state: DemoState) -> Table:
    table = Table(title=f"Notifications delivered to the demo's webhook ({len(state.notices)})", expand=True)
    table.add_column("at")
    table.add_column("status")
    table.add_column("alerts")
    for notice in state.notices[-6:]:
        table.add_row(notice.at, notice.status, Text("; ".join(notice.alerts)))
    return table


def _lag(state: DemoState) -> Text:
    if not state.lag:
        return Text("consumer lag: -")
    return Text("consumer lag (records behind): " + ", ".join(
        f"{name} {'-' if behind is None else f'{behind:,}'}" for name, behind in state.lag.items()))


def render(state: DemoState) -> Group:
    return Group(_figures(state), _summary(state), _alerts(state), _notices(state), _lag(state))
