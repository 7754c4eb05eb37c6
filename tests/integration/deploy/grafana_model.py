"""Read the Grafana dashboards of deploy/grafana: panels, their queries, variables, macros.

The hook for checks against live data: `panel_queries(dashboard)` gives every
panel target as a `PanelQuery` (panel id, title, datasource kind, query with
the dashboard variables replaced by sample values), ready to send to
Prometheus (`kind == "prometheus"`) or, after `expand_sql_macros`, to
PostgreSQL (`kind == "postgres"`).

Substitution follows Grafana's rules closely enough for these dashboards:
`$var`, `${var}`, `${var:format}` and `[[var]]`; in SQL a variable that is
multi-valued or has "All" is rendered as a quoted list (`'a','b'`), a
single-valued one raw (the queries quote it themselves: `pool = '$pool'`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import yaml

GRAFANA_DIR: Final = Path(__file__).resolve().parents[3] / "deploy" / "grafana"
DASHBOARD_DIR: Final = GRAFANA_DIR / "dashboards"
DATASOURCES_FILE: Final = GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yml"
DASHBOARDS_PROVIDER_FILE: Final = GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml"

# Grafana's own variables and SQL macros: always defined, never in `templating`.
BUILTINS: Final = frozenset({
    "__interval", "__interval_ms", "__rate_interval", "__rate_interval_ms", "__range", "__range_s",
    "__range_ms", "__from", "__to", "__dashboard", "__org", "__user", "__name", "__all",
    "timeFilter", "__timeFilter", "__timeFrom", "__timeTo", "__timeGroup", "__timeGroupAlias",
    "__time", "__timeEpoch", "__unixEpochFilter", "__unixEpochFrom", "__unixEpochTo",
    "__unixEpochGroup", "__unixEpochGroupAlias", "__unixEpochNanoFilter", "__unixEpochNanoFrom",
    "__unixEpochNanoTo", "__schema", "__table", "__column", "__value",
})

# What the variables are replaced by when a query is checked (promtool, PostgreSQL, live data).
SAMPLE_VALUES: Final[Mapping[str, str]] = {
    "pool": "main",
    "miner": "miner-1",
    "team": "alpha",
    "interval": "5m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__rate_interval": "1m",
    "__rate_interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}

# ${var}, ${var:format}, [[var]], $var; macros such as $__timeFilter( match as names too.
_VARIABLE: Final = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)\]\]|\$(\w+)")
_MACRO: Final = re.compile(r"\$__(\w+)\(([^()]*)\)")
_DURATION: Final = re.compile(r"^\s*'?(\d+)(ms|s|m|h|d|w)'?\s*$")
_UNIT_S: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class PanelQuery:
    panel_id: int | None  # None for variables and annotations
    title: str  # the panel's title, or "variable <name>" / "annotation <name>"
    kind: str  # "prometheus" | "postgres"
    ref_id: str
    query: str  # variables substituted (SQL macros NOT expanded: see expand_sql_macros)
    raw: str  # as written in the dashboard
    format: str | None = None  # time_series / table for SQL targets
    instant: bool = False


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def load_dashboard(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_absolute():
        path = DASHBOARD_DIR / path
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def provisioned_datasources(path: Path = DATASOURCES_FILE) -> dict[str, str]:
    """uid -> kind ("prometheus" / "postgres") of every provisioned data source."""
    document = yaml.safe_load(path.read_text())
    return {ds["uid"]: datasource_kind(ds["type"]) for ds in document.get("datasources", [])}


def datasource_kind(type_name: str) -> str:
    if "prometheus" in type_name:
        return "prometheus"
    if "postgres" in type_name:
        return "postgres"
    return type_name


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included; a collapsed row holds its panels inside it."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def data_panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [p for p in iter_panels(dashboard) if p.get("type") != "row"]


def variables(dashboard: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def variables_used(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in _VARIABLE.finditer(text)}


def target_query(target: Mapping[str, Any]) -> str | None:
    for key in ("expr", "rawSql"):
        if isinstance(target.get(key), str) and target[key].strip():
            return str(target[key])
    return None


def variable_query(variable: Mapping[str, Any]) -> str | None:
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query") or query.get("rawSql")
    return query if isinstance(query, str) and query.strip() else None


def substitute(text: str, dashboard: Mapping[str, Any], kind: str,
               values: Mapping[str, str] = SAMPLE_VALUES) -> str:
    """Replace every variable Grafana would; macros ($__timeFilter(...)) are left alone."""
    defined = variables(dashboard)

    def replace(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name not in values:
            return match.group(0)
        value = values[name]
        variable = defined.get(name, {})
        if kind == "postgres" and (variable.get("multi") or variable.get("includeAll")):
            return "'" + value.replace("'", "''") + "'"
        return value

    return _VARIABLE.sub(replace, text)


def _kind_of(ref: Any, known: Mapping[str, str] | None) -> str:
    if isinstance(ref, dict):
        uid, type_name = ref.get("uid"), ref.get("type")
        if known is not None and uid in known:
            return known[uid]
        if isinstance(type_name, str):
            return datasource_kind(type_name)
    return "unknown"


def panel_queries(dashboard: Mapping[str, Any], values: Mapping[str, str] = SAMPLE_VALUES,
                  datasources: Mapping[str, str] | None = None) -> list[PanelQuery]:
    """Every target of every (non-row) panel, variables substituted with `values`."""
    out: list[PanelQuery] = []
    for panel in data_panels(dashboard):
        for target in panel.get("targets", []):
            raw = target_query(target)
            if raw is None:
                continue
            kind = _kind_of(target.get("datasource") or panel.get("datasource"), datasources)
            out.append(PanelQuery(
                panel_id=panel.get("id"), title=panel.get("title", ""), kind=kind,
                ref_id=target.get("refId", ""), query=substitute(raw, dashboard, kind, values), raw=raw,
                format=target.get("format"), instant=bool(target.get("instant")),
            ))
    return out


def variable_queries(dashboard: Mapping[str, Any], values: Mapping[str, str] = SAMPLE_VALUES,
                     datasources: Mapping[str, str] | None = None) -> list[PanelQuery]:
    """The queries of the `query` variables. Prometheus ones are label_values(...) calls,
    not PromQL: their selector is given as the query (what a live check would ask for)."""
    out: list[PanelQuery] = []
    for name, variable in variables(dashboard).items():
        raw = variable_query(variable) if variable.get("type") == "query" else None
        if raw is None:
            continue
        kind = _kind_of(variable.get("datasource"), datasources)
        query = substitute(raw, dashboard, kind, values)
        if kind == "prometheus":
            query = label_values_selector(query)
        out.append(PanelQuery(None, f"variable {name}", kind, name, query, raw, "table"))
    return out


def annotation_queries(dashboard: Mapping[str, Any], values: Mapping[str, str] = SAMPLE_VALUES,
                       datasources: Mapping[str, str] | None = None) -> list[PanelQuery]:
    out: list[PanelQuery] = []
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("builtIn"):
            continue
        target = annotation.get("target") or {}
        raw = target_query(target) or annotation.get("rawQuery") or annotation.get("expr")
        if not raw:
            continue
        kind = _kind_of(annotation.get("datasource"), datasources)
        out.append(PanelQuery(None, f"annotation {annotation.get('name')}", kind, target.get("refId", "Anno"),
                              substitute(raw, dashboard, kind, values), raw, target.get("format", "table")))
    return out


def all_queries(dashboard: Mapping[str, Any], values: Mapping[str, str] = SAMPLE_VALUES,
                datasources: Mapping[str, str] | None = None) -> list[PanelQuery]:
    return [*panel_queries(dashboard, values, datasources), *variable_queries(dashboard, values, datasources),
            *annotation_queries(dashboard, values, datasources)]


def label_values_selector(query: str) -> str:
    """label_values(selector, label) -> selector; label_values(label) -> {label!=""}."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query, re.DOTALL)
    if match:
        return match.group(1).strip()
    match = re.fullmatch(r"\s*label_values\(\s*(\w+)\s*\)\s*", query)
    if match:
        return '{' + match.group(1) + '!=""}'
    return query


# --- SQL macros -------------------------------------------------------------------------------

def duration_s(text: str) -> float:
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a Grafana duration: {text!r}")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def _literal(at: datetime) -> str:
    return "'" + at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "'"


def expand_sql_macros(sql: str, start: datetime, end: datetime) -> str:
    """Grafana's PostgreSQL macros as the plain SQL its backend generates for them.

    $__timeGroup uses Grafana's own epoch-seconds form, so a query that
    works here gets the same column types it gets in Grafana."""

    def replace(match: re.Match[str]) -> str:
        name, args = match.group(1), [a.strip() for a in match.group(2).split(",")] if match.group(2) else []
        if name == "timeFilter":
            return f"{args[0]} BETWEEN {_literal(start)} AND {_literal(end)}"
        if name == "timeFrom":
            return _literal(start)
        if name == "timeTo":
            return _literal(end)
        if name == "time":
            return f'{args[0]} AS "time"'
        if name == "timeEpoch":
            return f'extract(epoch from {args[0]}) AS "time"'
        if name in ("timeGroup", "timeGroupAlias"):
            seconds = duration_s(args[1])
            group = f"floor(extract(epoch from {args[0]})/{seconds:g})*{seconds:g}"
            return group + (' AS "time"' if name == "timeGroupAlias" else "")
        if name == "unixEpochFilter":
            return f"{args[0]} >= {int(start.timestamp())} AND {args[0]} <= {int(end.timestamp())}"
        if name == "unixEpochFrom":
            return str(int(start.timestamp()))
        if name == "unixEpochTo":
            return str(int(end.timestamp()))
        raise ValueError(f"SQL macro $__{name} is not expanded here")

    return _MACRO.sub(replace, sql)
