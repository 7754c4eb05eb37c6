"""The panel model the console renders from a dashboard's `config` (docs/console.md "Dashboards").

A config is any JSON object; when it has `panels`, they must be well formed:

    {"panels": [{"id": "hashrate", "title": "Pool hashrate", "type": "timeseries",
                 "query": {"endpoint": "/api/pool/history", "params": {"pool": "main"}, "field": "hashrate"},
                 "unit": "hashrate", "width": 6}]}

A query names EITHER an endpoint of the allow-list below (with its params and
a field path) OR a PromQL expression. The allow-list is the whole of what a
panel can read: a public dashboard's panels are served without a key, so a
panel may name nothing else. Pure: `parse_panels` checks, nothing is read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, cast

from services.ingest.domain.metrics import METRIC_NAME_PATTERN
from shared.events import MINER_PATTERN, NAME_PATTERN

PanelType: TypeAlias = Literal["timeseries", "stat", "table"]
TimeRange: TypeAlias = Literal["1h", "6h", "24h", "7d"]
Unit: TypeAlias = Literal["hashrate", "percent", "count", "number"]

PANEL_TYPES: Final[tuple[PanelType, ...]] = ("timeseries", "stat", "table")
RANGE_S: Final[dict[TimeRange, int]] = {"1h": 3600, "6h": 6 * 3600, "24h": 86_400, "7d": 7 * 86_400}
UNITS: Final[tuple[Unit, ...]] = ("hashrate", "percent", "count", "number")
DEFAULT_RANGE: Final[TimeRange] = "1h"
MAX_PANELS: Final = 50
MAX_TITLE_CHARS: Final = 200
MAX_COLUMNS: Final = 12
MAX_PATH_SEGMENTS: Final = 8
MAX_PROMQL_CHARS: Final = 4096
GRID_COLUMNS: Final = 12
PANEL_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
_PANEL_ID: Final = re.compile(PANEL_ID_PATTERN)
_SEGMENT: Final = re.compile(r"[A-Za-z0-9_]{1,64}")


@dataclass(frozen=True)
class Param:
    """One parameter a panel may set: the same bounds the endpoint's own route puts on it."""

    pattern: str
    max_chars: int
    in_path: bool = False


_POOL: Final = Param(NAME_PATTERN, 64)
_STEP: Final = Param(r"^(1m|1h|1d)$", 2)


@dataclass(frozen=True)
class Endpoint:
    params: Mapping[str, Param]
    # Whether the answer is rows over time (each with `ts`): only those can be drawn as a time series.
    over_time: bool
    # Where the rows are in the answer: None when the answer is the list itself.
    rows_at: str | None = None


ENDPOINTS: Final[Mapping[str, Endpoint]] = {
    "/api/pool/stats": Endpoint({"pool": _POOL}, over_time=False),
    "/api/pool/history": Endpoint({"pool": _POOL, "step": _STEP}, over_time=True),
    "/api/miners/{miner}/stats": Endpoint({"miner": Param(MINER_PATTERN, 128, in_path=True), "pool": _POOL},
                                          over_time=False),
    "/api/miners/{miner}/history": Endpoint(
        {"miner": Param(MINER_PATTERN, 128, in_path=True), "pool": _POOL, "step": _STEP}, over_time=True),
    "/api/metrics": Endpoint({"name": Param(METRIC_NAME_PATTERN, 200), "labels": Param(r"^\{.*\}$", 8192)},
                             over_time=True, rows_at="metrics"),
    "/api/metrics/performance": Endpoint(
        {"host": Param(NAME_PATTERN, 255), "service": Param(r"^[A-Za-z0-9._-]+$", 128)},
        over_time=True, rows_at="performance"),
    "/api/metrics/miner/{minerId}": Endpoint(
        {"minerId": Param(MINER_PATTERN, 128, in_path=True), "pool": _POOL, "worker": Param(NAME_PATTERN, 64)},
        over_time=True, rows_at="rows"),
}


@dataclass(frozen=True)
class EndpointQuery:
    endpoint: str
    params: Mapping[str, str]
    field: tuple[str, ...] | None  # the value: of the answer (stat), of each row (timeseries), the list (table)
    series_by: tuple[str, ...] | None  # a row field splitting a time series into lines (e.g. `worker`)
    columns: tuple[tuple[str, ...], ...]  # a table's columns, paths within each row

    def path_param(self, name: str) -> str:
        return self.params[name]

    def query_params(self) -> dict[str, str]:
        spec = ENDPOINTS[self.endpoint].params
        return {k: v for k, v in self.params.items() if not spec[k].in_path}


@dataclass(frozen=True)
class PromQuery:
    promql: str
    range: TimeRange | None  # a fixed range for this panel, whatever the dashboard's selector says
    columns: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    type: PanelType
    query: EndpointQuery | PromQuery
    unit: Unit | None
    width: int


class PanelInvalid(ValueError):
    """A malformed panel: `field` is its path inside the config (`panels[2].query.endpoint`)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PanelInvalid(where, "must be a JSON object")
    return cast(dict[str, Any], value)


def _only(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise PanelInvalid(f"{where}.{key}", f"unknown field; allowed: {', '.join(sorted(allowed))}")


def _text(value: Any, where: str, *, max_chars: int, pattern: str | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise PanelInvalid(where, "must be a non-empty string")
    if len(value) > max_chars:
        raise PanelInvalid(where, f"at most {max_chars} characters")
    if pattern is not None and re.fullmatch(pattern.removeprefix("^").removesuffix("$"), value) is None:
        raise PanelInvalid(where, f"must match {pattern}")
    return value


def parse_path(value: Any, where: str) -> tuple[str, ...]:
    """A field path: dot-separated keys or list indexes, e.g. `hashrate.1h`, `workers.0.worker`."""
    text = _text(value, where, max_chars=MAX_PATH_SEGMENTS * 65)
    segments = tuple(text.split("."))
    if len(segments) > MAX_PATH_SEGMENTS or not all(_SEGMENT.fullmatch(s) for s in segments):
        raise PanelInvalid(where, f"a field path: up to {MAX_PATH_SEGMENTS} dot-separated names of "
                                  "letters, digits and '_' (e.g. hashrate.1h)")
    return segments


def _columns(value: Any, where: str, *, required: bool) -> tuple[tuple[str, ...], ...]:
    if value is None:
        if required:
            raise PanelInvalid(where, "a table panel needs its columns: a list of field paths")
        return ()
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_COLUMNS:
        raise PanelInvalid(where, f"a list of 1 to {MAX_COLUMNS} field paths")
    return tuple(parse_path(c, f"{where}[{i}]") for i, c in enumerate(value))


def _params(endpoint: str, value: Any, where: str) -> dict[str, str]:
    spec = ENDPOINTS[endpoint].params
    given = _object(value if value is not None else {}, where)
    _only(given, set(spec), where)
    params = {name: _text(v, f"{where}.{name}", max_chars=spec[name].max_chars, pattern=spec[name].pattern)
              for name, v in given.items()}
    for name, param in spec.items():
        if param.in_path and name not in params:
            raise PanelInvalid(f"{where}.{name}", f"required: {endpoint} names it in its path")
    return params


def _endpoint_query(query: dict[str, Any], kind: PanelType, where: str) -> EndpointQuery:
    _only(query, {"endpoint", "params", "field", "series_by", "columns"}, where)
    endpoint = query.get("endpoint")
    # A JSON object or list is no key of the allow-list (and unhashable): checked as text first.
    if not isinstance(endpoint, str) or endpoint not in ENDPOINTS:
        raise PanelInvalid(f"{where}.endpoint", f"not an endpoint a panel may read; one of: {', '.join(ENDPOINTS)}")
    spec = ENDPOINTS[endpoint]
    params = _params(endpoint, query.get("params"), f"{where}.params")
    field = parse_path(query["field"], f"{where}.field") if query.get("field") is not None else None
    series_by = parse_path(query["series_by"], f"{where}.series_by") if query.get("series_by") is not None else None
    if kind == "timeseries" and not spec.over_time:
        raise PanelInvalid(f"{where}.endpoint", "a timeseries panel needs an endpoint answering rows over time "
                                                "(a history or metrics endpoint)")
    if kind in ("timeseries", "stat") and field is None:
        raise PanelInvalid(f"{where}.field", f"a {kind} panel needs the field path of the number it shows")
    columns = _columns(query.get("columns"), f"{where}.columns", required=kind == "table")
    return EndpointQuery(endpoint, params, field, series_by, columns)


def _prom_query(query: dict[str, Any], kind: PanelType, where: str) -> PromQuery:
    _only(query, {"promql", "range", "columns"}, where)
    promql = _text(query["promql"], f"{where}.promql", max_chars=MAX_PROMQL_CHARS)
    fixed = query.get("range")
    if fixed is not None and (not isinstance(fixed, str) or fixed not in RANGE_S):
        raise PanelInvalid(f"{where}.range", f"one of {', '.join(RANGE_S)}")
    columns = _columns(query.get("columns"), f"{where}.columns", required=False)
    if kind != "table" and columns:
        raise PanelInvalid(f"{where}.columns", "only a table panel has columns")
    return PromQuery(promql, cast(TimeRange | None, fixed), columns)


def parse_panel(value: Any, where: str) -> Panel:
    panel = _object(value, where)
    _only(panel, {"id", "title", "type", "query", "unit", "width"}, where)
    panel_id = _text(panel.get("id"), f"{where}.id", max_chars=64, pattern=PANEL_ID_PATTERN)
    title = _text(panel.get("title"), f"{where}.title", max_chars=MAX_TITLE_CHARS)
    kind = panel.get("type")
    if not isinstance(kind, str) or kind not in PANEL_TYPES:
        raise PanelInvalid(f"{where}.type", f"one of {', '.join(PANEL_TYPES)}")
    unit = panel.get("unit")
    if unit is not None and (not isinstance(unit, str) or unit not in UNITS):
        raise PanelInvalid(f"{where}.unit", f"one of {', '.join(UNITS)}")
    width = panel.get("width", GRID_COLUMNS // 2)
    # bool is an int to Python, not to JSON: `true` is no width.
    if not isinstance(width, int) or isinstance(width, bool) or not 1 <= width <= GRID_COLUMNS:
        raise PanelInvalid(f"{where}.width", f"an integer from 1 to {GRID_COLUMNS} (grid columns)")
    query = _object(panel.get("query"), f"{where}.query")
    if ("promql" in query) == ("endpoint" in query):
        raise PanelInvalid(f"{where}.query", "names either an `endpoint` or a `promql` expression")
    parsed = (_prom_query(query, kind, f"{where}.query") if "promql" in query
              else _endpoint_query(query, kind, f"{where}.query"))
    return Panel(panel_id, title, kind, parsed, cast(Unit | None, unit), width)


def parse_panels(config: Mapping[str, Any]) -> list[Panel]:
    """The config's panels, checked; [] for a config without `panels` (it renders as "no panels")."""
    if "panels" not in config:
        return []
    panels = config["panels"]
    if not isinstance(panels, list):
        raise PanelInvalid("panels", "must be a list of panels")
    if len(panels) > MAX_PANELS:
        raise PanelInvalid("panels", f"at most {MAX_PANELS} panels")
    parsed = [parse_panel(p, f"panels[{i}]") for i, p in enumerate(panels)]
    seen: set[str] = set()
    for i, panel in enumerate(parsed):
        if panel.id in seen:
            raise PanelInvalid(f"panels[{i}].id", f"{panel.id!r} is used by another panel")
        seen.add(panel.id)
    return parsed


def find_panel(config: Mapping[str, Any], panel_id: str) -> Panel | None:
    """The panel called `panel_id`, checked on its own (a stored config may predate the checks): None when
    there is none; `PanelInvalid` when it exists but cannot be drawn."""
    panels = config.get("panels")
    if not isinstance(panels, list):
        return None
    for i, value in enumerate(panels[:MAX_PANELS]):
        if isinstance(value, dict) and value.get("id") == panel_id:
            return parse_panel(value, f"panels[{i}]")
    return None


def lookup(value: Any, path: tuple[str, ...]) -> Any:
    """The value at `path` (keys of objects, indexes of lists); None where the path leads nowhere."""
    for segment in path:
        if isinstance(value, dict):
            value = value.get(segment)
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return None
    return value
