"""Scheduled changes to the pool: workers going offline, coming back, losing hashrate.

A scenario file is YAML (or JSON):

    description: one worker drops, one miner halves
    schedule:
      - {at: 2m, miner: m1, worker: w1, action: offline, for: 10m}
      - {at: 3m, miner: m2, action: degrade, factor: 0.5}

`at` is event time since the simulation's start (`30s`, `5m`, `1h`, or a
number of seconds). Without `worker` an action applies to every worker of the
miner. `degrade` sets the share of the worker's own hashrate it keeps
(`factor: 1` restores it; not cumulative). `for` adds the undoing action that
much later (`online` after `offline`, `degrade` with factor 1 after
`degrade`). Parsing is pure; only `Scenario.load` reads a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, cast, get_args

import yaml

from shared.durations import parse_duration_ms

__all__ = ["Action", "Scenario", "ScenarioError", "ScheduledAction"]

Action = Literal["offline", "online", "degrade"]
_ACTIONS: Final = frozenset(get_args(Action))
_KEYS: Final = frozenset({"at", "miner", "worker", "action", "factor", "for"})


class ScenarioError(ValueError):
    """The scenario is not one this simulator can play; the message says where."""


@dataclass(frozen=True)
class ScheduledAction:
    at_ms: int  # event time since the simulation's start
    miner: str
    worker: str | None  # None: every worker of the miner
    action: Action
    factor: float | None = None  # degrade only

    def applies_to(self, miner: str, worker: str) -> bool:
        return self.miner == miner and self.worker in (None, worker)

    def as_json(self) -> dict[str, object]:
        return {"at_ms": self.at_ms, "miner": self.miner, "worker": self.worker,
                "action": self.action, "factor": self.factor}


@dataclass(frozen=True)
class Scenario:
    actions: tuple[ScheduledAction, ...] = ()
    description: str = ""

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read and check a scenario file; ScenarioError names the file and the entry at fault."""
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"{source}: cannot read: {exc.strerror or exc}") from exc
        return cls.parse(text, source=str(source))

    @classmethod
    def parse(cls, text: str, *, source: str = "<scenario>") -> Scenario:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ScenarioError(f"{source}: not valid YAML: {exc}") from exc
        if document is None:
            return cls()
        if isinstance(document, list):
            document = {"schedule": document}
        if not isinstance(document, dict) or set(document) - {"description", "schedule"}:
            raise ScenarioError(f"{source}: expected a mapping with `schedule` (and optional `description`)")
        entries = document.get("schedule") or []
        if not isinstance(entries, list):
            raise ScenarioError(f"{source}: `schedule` must be a list")
        actions: list[ScheduledAction] = []
        for index, entry in enumerate(entries):
            try:
                actions.extend(_entry(entry))
            except ScenarioError as exc:
                raise ScenarioError(f"{source}: schedule[{index}]: {exc}") from None
        # Stable: equal times keep the file's order.
        return cls(tuple(sorted(actions, key=lambda a: a.at_ms)), str(document.get("description") or ""))

    def for_worker(self, miner: str, worker: str) -> list[ScheduledAction]:
        """This worker's actions in time order (file order among equal times)."""
        return sorted((a for a in self.actions if a.applies_to(miner, worker)), key=lambda a: a.at_ms)

    def unknown_targets(self, workers: set[tuple[str, str]]) -> list[str]:
        """Miners or workers the scenario names that the pool does not have."""
        miners = {miner for miner, _ in workers}
        missing: list[str] = []
        for action in self.actions:
            if action.worker is None and action.miner not in miners:
                missing.append(f"miner {action.miner}")
            elif action.worker is not None and (action.miner, action.worker) not in workers:
                missing.append(f"worker {action.miner}/{action.worker}")
        return sorted(set(missing))


def _entry(entry: object) -> list[ScheduledAction]:
    if not isinstance(entry, dict):
        raise ScenarioError("expected a mapping such as {at: 2m, miner: m1, action: offline}")
    unknown = set(entry) - _KEYS
    if unknown:
        raise ScenarioError(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    action = entry.get("action")
    if action not in _ACTIONS:
        raise ScenarioError(f"action must be one of {', '.join(sorted(_ACTIONS))}, not {action!r}")
    miner = _name(entry.get("miner"), "miner")
    worker = None if entry.get("worker") is None else _name(entry.get("worker"), "worker")
    at_ms = _duration(entry.get("at"), "at")
    factor = entry.get("factor")
    if action == "degrade":
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not (
            math.isfinite(factor) and factor >= 0
        ):
            raise ScenarioError("degrade needs `factor`, a number >= 0 (0.5 keeps half the hashrate)")
        factor = float(factor)
    elif factor is not None:
        raise ScenarioError(f"`factor` belongs to degrade, not {action}")
    first = ScheduledAction(at_ms, miner, worker, cast(Action, action), factor)
    if "for" not in entry:
        return [first]
    if action == "online":
        raise ScenarioError("`for` undoes offline or degrade; online has nothing to undo")
    until = at_ms + _duration(entry["for"], "for")
    undo: ScheduledAction = (ScheduledAction(until, miner, worker, "online") if action == "offline"
                             else ScheduledAction(until, miner, worker, "degrade", 1.0))
    return [first, undo]


def _name(value: object, key: str) -> str:
    # YAML reads `worker: 1` as an int; names are strings, so say so rather than guess.
    if not isinstance(value, str) or not value:
        raise ScenarioError(f"`{key}` must be a non-empty string (quote numbers: '1')")
    return value


def _duration(value: object, key: str) -> int:
    if isinstance(value, bool):
        raise ScenarioError(f"`{key}` must be a duration such as 90s or 2m")
    if isinstance(value, int | float):
        if not (math.isfinite(value) and value >= 0):
            raise ScenarioError(f"`{key}` must be >= 0")
        return int(value * 1000)
    if isinstance(value, str):
        try:
            return parse_duration_ms(value.strip())
        except ValueError as exc:
            raise ScenarioError(f"`{key}`: {exc}") from None
    raise ScenarioError(f"`{key}` is required: a duration such as 90s or 2m")
