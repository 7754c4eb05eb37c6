"""What a panel draws, made from the answer its query got: one number, lines over time, or a table.

Pure: the answers come in as parsed JSON (an allow-listed endpoint's, or
Prometheus'), and only the panel's own fields go out, bounded, so a public
dashboard shows what its panels name and nothing else of the answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeAlias

from services.ingest.domain.dashboard_panels import ENDPOINTS, EndpointQuery, Panel, lookup

Scalar: TypeAlias = float | int | str | bool | None
Point: TypeAlias = tuple[float, float | None]

MAX_SERIES: Final = 20
MAX_POINTS: Final = 20_000
MAX_ROWS: Final = 500
MAX_CELL_CHARS: Final = 500


@dataclass
class PanelData:
    value: Scalar = None
    series: list[tuple[str, list[Point]]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[Scalar]] = field(default_factory=list)
    truncated: bool = False  # more series, points or rows than are shown


def scalar(value: Any) -> Scalar:
    """A JSON scalar as a cell shows it: objects and lists are not one (None), long text is cut."""
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value[:MAX_CELL_CHARS]
    return None


def number(value: Any) -> float | None:
    """A plotted value: numbers, and Prometheus' numbers as strings; anything else (or NaN, Inf) is a gap."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def _epoch_s(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def _path_text(path: tuple[str, ...]) -> str:
    return ".".join(path)


def answer_rows(query: EndpointQuery, answer: Any) -> list[Any]:
    """The rows of an endpoint's answer, oldest first where they carry `ts`."""
    spec = ENDPOINTS[query.endpoint]
    rows = answer if spec.rows_at is None else (answer.get(spec.rows_at) if isinstance(answer, dict) else None)
    if not isinstance(rows, list):
        return []
    if spec.over_time:
        # The metrics endpoints answer newest first; a chart wants time going right.
        return sorted(rows, key=lambda r: _epoch_s(r.get("ts") if isinstance(r, dict) else None) or 0.0)
    return rows


def _series_name(row: Any, query: EndpointQuery) -> str:
    if query.series_by is None:
        return _path_text(query.field or ())
    return str(scalar(lookup(row, query.series_by)))


def _table(rows: Iterable[Any], columns: tuple[tuple[str, ...], ...]) -> PanelData:
    data = PanelData(columns=[_path_text(c) for c in columns])
    for row in rows:
        if len(data.rows) >= MAX_ROWS:
            data.truncated = True
            break
        data.rows.append([scalar(lookup(row, c)) for c in columns])
    return data


def from_endpoint(panel: Panel, query: EndpointQuery, answer: Any) -> PanelData:
    spec = ENDPOINTS[query.endpoint]
    if panel.type == "table":
        if spec.over_time:
            rows = answer_rows(query, answer)
        else:
            # An object answer: `field` names a list in it (a miner's `workers`), else it is one row.
            found = lookup(answer, query.field) if query.field is not None else answer
            rows = found if isinstance(found, list) else [found]
        return _table(rows, query.columns)
    assert query.field is not None  # parse_panel requires it for these types
    if panel.type == "stat":
        if spec.over_time:
            rows = answer_rows(query, answer)
            return PanelData(value=scalar(lookup(rows[-1], query.field)) if rows else None)
        return PanelData(value=scalar(lookup(answer, query.field)))
    lines: dict[str, list[Point]] = {}
    data = PanelData()
    points = 0
    for row in answer_rows(query, answer):
        at = _epoch_s(row.get("ts") if isinstance(row, dict) else None)
        if at is None:
            continue
        name = _series_name(row, query)
        if name not in lines and len(lines) >= MAX_SERIES or points >= MAX_POINTS:
            data.truncated = True
            continue
        lines.setdefault(name, []).append((at, number(lookup(row, query.field))))
        points += 1
    data.series = list(lines.items())
    return data


def series_label(metric: Mapping[str, Any]) -> str:
    """A Prometheus series as people write it: `name{label="value", ...}`."""
    name = str(metric.get("__name__", ""))
    labels = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{labels}}}" if labels or not name else name


def _prom_result(body: Any) -> tuple[str, Any]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return "", []
    return str(data.get("resultType", "")), data.get("result", [])


def from_prometheus_range(body: Any) -> PanelData:
    kind, result = _prom_result(body)
    data = PanelData()
    if kind != "matrix" or not isinstance(result, list):
        return data
    for item in result:
        if len(data.series) >= MAX_SERIES:
            data.truncated = True
            break
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            continue
        metric = item.get("metric") if isinstance(item.get("metric"), dict) else {}
        points = [(float(v[0]), number(v[1])) for v in item["values"][:MAX_POINTS]
                  if isinstance(v, list) and len(v) == 2 and _epoch_s(v[0]) is not None]
        data.series.append((series_label(metric), points))
    return data


def _samples(body: Any) -> list[tuple[dict[str, Any], float | None]]:
    kind, result = _prom_result(body)
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return [({}, number(result[1]))]
    if kind != "vector" or not isinstance(result, list):
        return []
    samples = []
    for item in result:
        if isinstance(item, dict) and isinstance(item.get("value"), list) and len(item["value"]) == 2:
            metric = item.get("metric") if isinstance(item.get("metric"), dict) else {}
            samples.append((metric, number(item["value"][1])))
    return samples


def from_prometheus_instant(panel: Panel, columns: tuple[tuple[str, ...], ...], body: Any) -> PanelData:
    samples = _samples(body)
    if panel.type == "stat":
        return PanelData(value=samples[0][1] if samples else None)
    # A table: one row per series; its labels (or the columns asked for) and the value.
    names = [_path_text(c) for c in columns] or sorted({k for metric, _ in samples for k in metric})
    data = PanelData(columns=[*names, "value"])
    for metric, value in samples:
        if len(data.rows) >= MAX_ROWS:
            data.truncated = True
            break
        data.rows.append([*(scalar(metric.get(n)) for n in names), value])
    return data
