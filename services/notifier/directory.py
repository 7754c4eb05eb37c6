"""What the notifier reads back from PostgreSQL and holds in memory: channels, silences, firing alerts.

Reloaded every `NOTIFIER_RELOAD_S` (channels only when they changed), so a
channel, a silence or an inhibiting alert made through the API takes effect
within a second. Inhibition rules come from a file read once at start.

`muted` answers, at flush time, why an alert is left out of a notification:
silenced (a silence in force matches it) or inhibited (a firing source
alert of an inhibition rule has the same `equal` labels).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .domain.routing import InhibitRule, Route, Silence, inhibited, routes_for, silenced

__all__ = ["Destination", "Directory", "Loaders"]


@dataclass(frozen=True, slots=True)
class Destination:
    """A channel as the notifier needs it: where and how to send, and its route."""

    id: int
    name: str
    type: str
    config: Mapping[str, Any]  # checked, secrets decrypted
    route: Route
    rate_limit_per_minute: float | None = None

    @property
    def max_alerts(self) -> int:
        # PagerDuty acts per alert: a cut alert's incident would never resolve.
        return 0 if self.type == "pagerduty" else int(self.config.get("max_alerts", 0))


@dataclass(frozen=True, slots=True)
class Loaders:
    channels_state: Callable[[], Awaitable[object]]  # changes whenever any channel does
    channels: Callable[[], Awaitable[Sequence[Destination]]]
    silences: Callable[[], Awaitable[Sequence[Silence]]]
    firing: Callable[[], Awaitable[Sequence[Mapping[str, str]]]]


@dataclass
class Directory:
    loaders: Loaders
    inhibit_rules: tuple[InhibitRule, ...] = ()
    channels: dict[int, Destination] = field(default_factory=dict)
    silences: tuple[Silence, ...] = ()
    firing: tuple[Mapping[str, str], ...] = ()
    loaded: bool = False
    _channels_seen: object = None

    async def reload(self) -> None:
        state = await self.loaders.channels_state()
        if state != self._channels_seen or not self.loaded:
            self.channels = {d.id: d for d in await self.loaders.channels()}
            self._channels_seen = state
        self.silences = tuple(await self.loaders.silences())
        self.firing = tuple(await self.loaders.firing()) if self.inhibit_rules else ()
        self.loaded = True

    def routes_for(self, labels: Mapping[str, str]) -> list[Route]:
        return routes_for(labels, (d.route for d in self.channels.values()))

    def muted(self, labels: Mapping[str, str], now_ms: int) -> str | None:
        if silenced(labels, self.silences, now_ms) is not None:
            return "silenced"
        if self.inhibit_rules and inhibited(labels, self.firing, self.inhibit_rules):
            return "inhibited"
        return None
