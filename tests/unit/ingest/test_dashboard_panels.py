"""The panel model (what a dashboard's config may ask the console to draw) and what a panel's data is
made of, from canned answers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.api.panel_queries import READERS
from services.ingest.domain.dashboard_panels import (
    ENDPOINTS,
    MAX_PANELS,
    EndpointQuery,
    PanelInvalid,
    PromQuery,
    find_panel,
    lookup,
    parse_panels,
)
from services.ingest.domain.dashboards import check_panels
from services.ingest.domain.panel_data import (
    MAX_ROWS,
    MAX_SERIES,
    from_endpoint,
    from_prometheus_instant,
    from_prometheus_range,
    number,
    scalar,
)

pytestmark = pytest.mark.unit


def panel(**fields: Any) -> dict[str, Any]:
    base = {"id": "p", "title": "Pool hashrate", "type": "stat",
            "query": {"endpoint": "/api/pool/stats", "params": {"pool": "main"}, "field": "hashrate.1h"}}
    return {**base, **fields}


def query(**fields: Any) -> dict[str, Any]:
    return {"endpoint": "/api/pool/history", "field": "hashrate", **fields}


def test_every_allowed_endpoint_has_a_reader() -> None:
    assert set(READERS) == set(ENDPOINTS)


@pytest.mark.parametrize("config", [{}, {"rows": [1]}, {"panels": []}, {"title": "x", "panels": [panel()]}])
def test_configs_without_panels_or_with_good_ones_pass(config: dict[str, Any]) -> None:
    check_panels(config)


def test_a_good_panel_is_parsed_with_defaults() -> None:
    [parsed] = parse_panels({"panels": [panel(type="timeseries", unit="hashrate", width=12,
                                              query=query(params={"pool": "main", "step": "1h"},
                                                          series_by="worker"))]})
    assert parsed.width == 12 and parsed.unit == "hashrate"
    assert isinstance(parsed.query, EndpointQuery)
    assert parsed.query.field == ("hashrate",) and parsed.query.series_by == ("worker",)
    [default] = parse_panels({"panels": [panel()]})
    assert default.width == 6 and default.unit is None
    [prom] = parse_panels({"panels": [panel(type="table", query={"promql": "up", "range": "7d",
                                                                 "columns": ["job"]})]})
    assert isinstance(prom.query, PromQuery) and prom.query.range == "7d" and prom.query.columns == (("job",),)


def test_path_parameters_are_required_and_split_from_filters() -> None:
    with pytest.raises(PanelInvalid) as missing:
        parse_panels({"panels": [panel(query={"endpoint": "/api/miners/{miner}/stats", "field": "x"})]})
    assert missing.value.field == "panels[0].query.params.miner"
    [parsed] = parse_panels({"panels": [panel(query={"endpoint": "/api/metrics/miner/{minerId}", "field": "x",
                                                     "params": {"minerId": "bc1q/x", "worker": "rig-1"}})]})
    assert isinstance(parsed.query, EndpointQuery)
    assert parsed.query.path_param("minerId") == "bc1q/x" and parsed.query.query_params() == {"worker": "rig-1"}


@pytest.mark.parametrize(("config", "field"), [
    ({"panels": {"a": 1}}, "panels"),
    ({"panels": [panel()] * (MAX_PANELS + 1)}, "panels"),
    ({"panels": ["text"]}, "panels[0]"),
    ({"panels": [panel(), panel(id="q", query=query(endpoint="/api/dashboards"))]}, "panels[1].query.endpoint"),
    ({"panels": [panel(query=query(endpoint="/api/pool/stats/../keys"))]}, "panels[0].query.endpoint"),
    ({"panels": [panel(id="bad id")]}, "panels[0].id"),
    ({"panels": [panel(id="")]}, "panels[0].id"),
    ({"panels": [panel(title="")]}, "panels[0].title"),
    ({"panels": [panel(title="x" * 201)]}, "panels[0].title"),
    ({"panels": [panel(title=7)]}, "panels[0].title"),
    ({"panels": [panel(type="gauge")]}, "panels[0].type"),
    ({"panels": [panel(unit="furlongs")]}, "panels[0].unit"),
    ({"panels": [panel(width=0)]}, "panels[0].width"),
    ({"panels": [panel(width=True)]}, "panels[0].width"),
    ({"panels": [panel(width=6.5)]}, "panels[0].width"),
    ({"panels": [panel(colour="red")]}, "panels[0].colour"),
    ({"panels": [panel(query="up")]}, "panels[0].query"),
    ({"panels": [panel(query={})]}, "panels[0].query"),
    ({"panels": [panel(query=query(params={"pool": "x", "miner": "y"}))]}, "panels[0].query.params.miner"),
    ({"panels": [panel(query=query(params={"pool": "<script>"}))]}, "panels[0].query.params.pool"),
    ({"panels": [panel(query=query(params={"pool": 5}))]}, "panels[0].query.params.pool"),
    ({"panels": [panel(query=query(params={"step": "5m"}))]}, "panels[0].query.params.step"),
    ({"panels": [panel(query=query(field="a..b"))]}, "panels[0].query.field"),
    ({"panels": [panel(query=query(field="a.b.c.d.e.f.g.h.i"))]}, "panels[0].query.field"),
    ({"panels": [panel(query=query(field=None))]}, "panels[0].query.field"),
    ({"panels": [panel(type="timeseries", query=query(endpoint="/api/pool/stats"))]}, "panels[0].query.endpoint"),
    ({"panels": [panel(type="table")]}, "panels[0].query.columns"),
    ({"panels": [panel(type="table", query=query(columns=[]))]}, "panels[0].query.columns"),
    ({"panels": [panel(type="table", query=query(columns=["a"] * 13))]}, "panels[0].query.columns"),
    ({"panels": [panel(type="table", query=query(columns=["ok", "not ok"]))]}, "panels[0].query.columns[1]"),
    ({"panels": [panel(query={"promql": ""})]}, "panels[0].query.promql"),
    ({"panels": [panel(query={"promql": "x" * 4097})]}, "panels[0].query.promql"),
    ({"panels": [panel(query={"promql": "up", "range": "2h"})]}, "panels[0].query.range"),
    ({"panels": [panel(query={"promql": "up", "columns": ["job"]})]}, "panels[0].query.columns"),
    ({"panels": [panel(query={"promql": "up", "endpoint": "/api/pool/stats"})]}, "panels[0].query"),
    ({"panels": [panel(), panel()]}, "panels[1].id"),
])
def test_malformed_panels_name_their_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(PanelInvalid) as raised:
        check_panels(config)
    assert raised.value.field == field


def test_find_panel_checks_only_the_one_asked_for() -> None:
    config = {"panels": [{"id": "old", "type": "pie"}, panel(id="good")]}
    found = find_panel(config, "good")
    assert found is not None and found.id == "good"
    assert find_panel(config, "missing") is None and find_panel({}, "good") is None
    with pytest.raises(PanelInvalid) as raised:
        find_panel(config, "old")
    assert raised.value.field == "panels[0].title"


def test_lookup_follows_keys_and_indexes() -> None:
    answer = {"hashrate": {"1h": 5.0}, "workers": [{"worker": "rig-1"}]}
    assert lookup(answer, ("hashrate", "1h")) == 5.0
    assert lookup(answer, ("workers", "0", "worker")) == "rig-1"
    assert lookup(answer, ("workers", "1", "worker")) is None
    assert lookup(answer, ("hashrate", "1h", "deeper")) is None


def test_scalars_and_numbers() -> None:
    assert [scalar(v) for v in (1, 2.5, True, "x" * 600, {"a": 1}, [1], float("nan"))] == [
        1, 2.5, True, "x" * 500, None, None, None]
    assert [number(v) for v in ("1.5", "NaN", "+Inf", "x", 3, True, None)] == [1.5, None, None, None, 3.0, None,
                                                                              None]


def _panel(spec: dict[str, Any]) -> Any:
    [parsed] = parse_panels({"panels": [spec]})
    return parsed


def test_a_stat_reads_the_answer_or_the_newest_row() -> None:
    stat = _panel(panel())
    assert from_endpoint(stat, stat.query, {"hashrate": {"1h": 7.5}}).value == 7.5
    newest = _panel(panel(query={"endpoint": "/api/metrics", "field": "value"}))
    rows = {"metrics": [{"ts": "2026-01-01T00:02:00Z", "value": 2}, {"ts": "2026-01-01T00:01:00Z", "value": 1}]}
    assert from_endpoint(newest, newest.query, rows).value == 2  # newest first in the answer
    assert from_endpoint(newest, newest.query, {"metrics": []}).value is None


def test_a_time_series_splits_by_a_row_field_oldest_first() -> None:
    chart = _panel(panel(type="timeseries", query=query(endpoint="/api/miners/{miner}/history",
                                                        params={"miner": "alice"}, series_by="worker")))
    rows = [{"ts": "2026-01-01T00:01:00+00:00", "worker": "b", "hashrate": 2.0},
            {"ts": "2026-01-01T00:00:00+00:00", "worker": "a", "hashrate": 1.0},
            {"ts": "2026-01-01T00:01:00+00:00", "worker": "a", "hashrate": "n/a"},
            {"ts": None, "worker": "a", "hashrate": 9.0}]
    data = from_endpoint(chart, chart.query, rows)
    assert data.series == [("a", [(1767225600.0, 1.0), (1767225660.0, None)]), ("b", [(1767225660.0, 2.0)])]
    many = [{"ts": "2026-01-01T00:00:00+00:00", "worker": f"w{i}", "hashrate": 1.0} for i in range(MAX_SERIES + 3)]
    capped = from_endpoint(chart, chart.query, many)
    assert len(capped.series) == MAX_SERIES and capped.truncated


def test_a_table_of_rows_or_of_a_list_in_the_answer() -> None:
    table = _panel(panel(type="table", query={"endpoint": "/api/miners/{miner}/stats", "params": {"miner": "m"},
                                              "field": "workers", "columns": ["worker", "hashrate.1h", "x"]}))
    answer = {"workers": [{"worker": "<b>rig</b>", "hashrate": {"1h": 3.0}}]}
    data = from_endpoint(table, table.query, answer)
    assert data.columns == ["worker", "hashrate.1h", "x"] and data.rows == [["<b>rig</b>", 3.0, None]]
    whole = _panel(panel(type="table", query={"endpoint": "/api/pool/stats", "columns": ["active_workers"]}))
    assert from_endpoint(whole, whole.query, {"active_workers": 4}).rows == [[4]]
    long = _panel(panel(type="table", query=query(columns=["hashrate"])))
    capped = from_endpoint(long, long.query, [{"ts": "2026-01-01T00:00:00Z", "hashrate": i} for i in range(600)])
    assert len(capped.rows) == MAX_ROWS and capped.truncated


def test_prometheus_answers() -> None:
    matrix = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "up", "job": "a"}, "values": [[10, "1"], [25, "NaN"]]},
        {"metric": {}, "values": [[10, "2"]]}]}}
    assert from_prometheus_range(matrix).series == [('up{job="a"}', [(10.0, 1.0), (25.0, None)]), ("{}", [(10.0, 2.0)])]
    assert from_prometheus_range({"status": "error"}).series == []
    vector = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"job": "a", "instance": "x"}, "value": [10, "3"]}, {"metric": {"job": "b"}, "value": [10, "4"]}]}}
    stat = _panel(panel(query={"promql": "up"}))
    assert from_prometheus_instant(stat, (), vector).value == 3.0
    scalar_answer = {"status": "success", "data": {"resultType": "scalar", "result": [10, "42"]}}
    assert from_prometheus_instant(stat, (), scalar_answer).value == 42.0
    table = _panel(panel(type="table", query={"promql": "up"}))
    data = from_prometheus_instant(table, (), vector)
    assert data.columns == ["instance", "job", "value"] and data.rows == [["x", "a", 3.0], [None, "b", 4.0]]
    chosen = from_prometheus_instant(table, (("job",),), vector)
    assert chosen.columns == ["job", "value"] and chosen.rows == [["a", 3.0], ["b", 4.0]]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["stat", "table", "timeseries", "/api/pool/stats", "/api/miners/{miner}/stats", "1h", "x"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "title", "type", "query", "unit", "width", "endpoint", "params", "field",
                         "series_by", "columns", "promql", "range", "panels", "miner", "pool"]) | st.text(max_size=5),
        inner, max_size=6),
    max_leaves=30)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(panels=_JSON)
def test_any_json_is_either_panels_or_a_named_refusal(panels: Any) -> None:
    # Hostile configs: only ever a PanelInvalid naming a field inside the config, never another error.
    try:
        check_panels({"panels": panels})
    except PanelInvalid as exc:
        assert exc.field.startswith("panels") and exc.reason
