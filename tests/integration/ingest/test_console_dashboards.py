"""Dashboards in the console and their panels' data route, over real HTTP: who sees which dashboard
(a public one without a key, a private one only for its owner, the 404 page for anyone else), the
panel model checked on save, each panel's data equal to what the API answers, names escaped."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.ingest.conftest import Api
from tests.integration.ingest.console_helpers import CSP, browser, signed_in
from tests.integration.ingest.test_query import MATRIX, FakePrometheus, prometheus
from tests.integration.ingest.test_stats import current_minute, get, insert_pool_minute, insert_worker_minute

pytestmark = pytest.mark.integration

__all__ = ["prometheus"]  # the stand-in Prometheus fixture, shared with test_query.py

XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module")
def module_settings_overrides(prometheus: FakePrometheus) -> dict[str, Any]:
    return {"prometheus_url": prometheus.url}


def stat(panel_id: str, field: str, *, pool: str, title: str = "Hashrate") -> dict[str, Any]:
    return {"id": panel_id, "title": title, "type": "stat", "unit": "hashrate", "width": 3,
            "query": {"endpoint": "/api/pool/stats", "params": {"pool": pool}, "field": field}}


def config(pool: str, *, title: str = "Hashrate") -> dict[str, Any]:
    return {"panels": [
        stat("now", "hashrate.1h", pool=pool, title=title),
        {"id": "history", "title": "Pool hashrate", "type": "timeseries", "unit": "hashrate", "width": 9,
         "query": {"endpoint": "/api/pool/history", "params": {"pool": pool}, "field": "hashrate"}},
        {"id": "workers", "title": "Workers", "type": "table", "width": 12,
         "query": {"endpoint": "/api/miners/{miner}/stats", "params": {"miner": "alice", "pool": pool},
                   "field": "workers", "columns": ["worker", "hashrate.1h", "accepted"]}},
    ]}


async def create(api: Api, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"name": "Wall", "config": {}, "is_public": False, **fields}
    response = await api.client.post("/api/dashboards", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_public_dashboard_opens_without_a_key_and_its_panels_equal_the_api(module_api: Api) -> None:
    api, pool = module_api, "dash-pool"
    m = await current_minute()
    await insert_pool_minute(api.container.pool, pool, m - 2 * MINUTE, difficulty=600, accepted=10)
    await insert_pool_minute(api.container.pool, pool, m - 5 * MINUTE, difficulty=300, accepted=5)
    await insert_worker_minute(api.container.pool, pool, "alice", "rig-1", m - 2 * MINUTE, difficulty=60, accepted=3)
    board = await create(api, await api.headers("admin", "read"), is_public=True, config=config(pool))
    async with browser(api.base_url) as client:  # no session, no key
        page = await client.get(f"/dashboards/{board['id']}")
        assert page.status_code == 200, page.text
        assert page.headers["content-security-policy"] == CSP
        assert 'data-field="panel-value-now"' in page.text and 'id="chart-history"' in page.text
        assert 'data-field="panel-rows-workers"' in page.text and "w-9" in page.text
        base = f"/api/dashboards/{board['id']}/panels"
        answer = (await client.get(f"{base}/now/data")).json()
        stats = await get(api, "/api/pool/stats", pool=pool)
        assert answer["value"] == stats["hashrate"]["1h"] > 0
        assert set(answer) >= {"panel", "type", "range", "start", "end", "value", "series", "columns", "rows"}
        history = (await client.get(f"{base}/history/data", params={"range": "6h"})).json()
        rows = await get(api, "/api/pool/history", pool=pool, **{"from": history["start"]})
        assert history["range"] == "6h"
        assert [p[1] for p in history["series"][0]["points"]] == [r["hashrate"] for r in rows]
        assert len(rows) == 2
        table = (await client.get(f"{base}/workers/data")).json()
        miner = await get(api, "/api/miners/alice/stats", pool=pool)
        assert table["columns"] == ["worker", "hashrate.1h", "accepted"]
        assert table["rows"] == [[w["worker"], w["hashrate"]["1h"], w["accepted"]] for w in miner["workers"]]
        # The public dashboard opens its own panels, nothing else of the API.
        assert (await client.get("/api/pool/stats", params={"pool": pool})).status_code == 401
        assert (await client.get(f"{base}/nope/data")).status_code == 404
        bad = await client.get(f"{base}/now/data", params={"range": "2y"})
        assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "query.range"


async def test_a_private_dashboard_is_its_owners_alone(module_api: Api) -> None:
    api = module_api
    owner_key, other_key = await api.key("admin", "read"), await api.key("admin", "read")
    board = await create(api, {"Authorization": f"Bearer {owner_key}"}, name="Secret vault 7", config=config("p"))
    path = f"/dashboards/{board['id']}"
    async with browser(api.base_url) as anonymous:
        # Without a session: sign in first, exactly as for an id that does not exist.
        for probe in (path, "/dashboards/00000000-0000-0000-0000-000000000000"):
            answer = await anonymous.get(probe)
            assert answer.status_code == 303
            assert answer.headers["location"] == f"/sign-in?next={quote(probe, safe='')}"
        assert (await anonymous.get(f"/api/dashboards/{board['id']}/panels/now/data")).status_code == 404
    async with browser(api.base_url) as other:
        await signed_in(other, other_key)
        refused = await other.get(path)
        assert refused.status_code == 404  # never 403: the id must not be probed
        assert refused.headers["content-security-policy"] == CSP and "Secret vault 7" not in refused.text
        assert (await other.get(f"/api/dashboards/{board['id']}/panels/now/data")).status_code == 404
        assert (await other.get("/dashboards/not-a-uuid")).status_code == 404
        listing = await other.get("/dashboards")
        assert listing.status_code == 200 and 'data-field="dashboards"' in listing.text
    async with browser(api.base_url) as owner:
        await signed_in(owner, owner_key)
        page = await owner.get(path + "?range=24h")
        assert page.status_code == 200 and "Secret vault 7" in page.text
        assert re.search(r'data-range="24h" aria-pressed="true"', page.text)
        assert (await owner.get(f"/api/dashboards/{board['id']}/panels/now/data")).status_code == 200
        assert (await owner.get(path + "?range=1y")).status_code == 422


async def test_the_list_needs_a_session(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        answer = await client.get("/dashboards")
        assert answer.status_code == 303 and answer.headers["location"] == "/sign-in?next=%2Fdashboards"
        await signed_in(client, await module_api.key("ingest"))  # no `read`: the public ones still show
        assert (await client.get("/dashboards")).status_code == 200


@pytest.mark.parametrize("hostile", XSS)
async def test_dashboard_and_panel_titles_are_escaped(module_api: Api, hostile: str) -> None:
    api = module_api
    board = await create(api, await api.headers("admin", "read"), is_public=True, name=f"Board {hostile}",
                         description=hostile, config=config("p", title=f"Panel {hostile}"))
    async with browser(api.base_url) as client:
        page = await client.get(f"/dashboards/{board['id']}")
        assert page.status_code == 200
        assert hostile not in page.text
        escaped = hostile.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
        assert f"Board {escaped}" in page.text and f"Panel {escaped}" in page.text
        assert not re.search(r"<img|<script>alert", page.text)


async def test_a_stored_config_from_before_panels_still_opens(module_api: Api) -> None:
    api = module_api
    headers = await api.headers("admin", "read")
    old = await create(api, headers, is_public=True, config={"rows": [1, 2], "title": "legacy"})
    async with browser(api.base_url) as client:
        page = await client.get(f"/dashboards/{old['id']}")
        assert page.status_code == 200 and 'data-field="no-panels"' in page.text
    # A config stored before the checks, with a panel the console cannot draw: the page says so.
    broken = await create(api, headers, is_public=True)
    await api.container.pool.execute("UPDATE dashboards SET config = $1 WHERE id = $2::uuid",
                                     {"panels": [{"id": "x", "title": "old", "type": "pie"}]}, broken["id"])
    async with browser(api.base_url) as client:
        page = await client.get(f"/dashboards/{broken['id']}")
        assert page.status_code == 200 and "cannot be drawn" in page.text and "panels[0].type" in page.text
        data = await client.get(f"/api/dashboards/{broken['id']}/panels/x/data")
        assert data.status_code == 422 and data.json()["details"][0]["field"] == "path.panelId"


@pytest.mark.parametrize(("panels", "field"), [
    ([{**stat("a", "hashrate.1h", pool="p"), "query": {"endpoint": "/api/keys", "field": "x"}}],
     "body.config.panels[0].query.endpoint"),
    ([stat("a", "x", pool="p"), stat("b", "x", pool="p"),
      {**stat("c", "x", pool="p"), "query": {"endpoint": "/admin"}}], "body.config.panels[2].query.endpoint"),
    ([stat("a", "x", pool="p"), stat("a", "y", pool="p")], "body.config.panels[1].id"),
    ([{**stat("a", "x", pool="p"), "type": "pie"}], "body.config.panels[0].type"),
    ([{**stat("a", "x", pool="p"), "width": 13}], "body.config.panels[0].width"),
    ([{**stat("a", "x", pool="p"), "query": {"endpoint": "/api/pool/stats", "params": {"pool": "a b"},
                                           "field": "x"}}], "body.config.panels[0].query.params.pool"),
    ([{**stat("a", "x", pool="p"), "query": {"promql": "up", "endpoint": "/api/pool/stats"}}],
     "body.config.panels[0].query"),
    ([{**stat("a", "x", pool="p"), "type": "timeseries"}], "body.config.panels[0].query.endpoint"),
    ("not a list", "body.config.panels"),
])
async def test_a_malformed_panel_is_refused_with_its_path(module_api: Api, panels: Any, field: str) -> None:
    api = module_api
    headers = await api.headers("admin", "read")
    response = await api.client.post("/api/dashboards", json={"name": "n", "config": {"panels": panels}},
                                     headers=headers)
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["details"]] == [field]
    board = await create(api, headers)
    patched = await api.client.patch(f"/api/dashboards/{board['id']}", json={"config": {"panels": panels}},
                                     headers=headers)
    assert patched.status_code == 422 and patched.json()["details"][0]["field"] == field


async def test_promql_panels_read_prometheus(module_api: Api, prometheus: FakePrometheus) -> None:
    api = module_api
    panels = [
        {"id": "up-line", "title": "Up", "type": "timeseries", "query": {"promql": "up"}},
        {"id": "up-day", "title": "Up (day)", "type": "timeseries", "query": {"promql": "up", "range": "24h"}},
        {"id": "up-now", "title": "Up now", "type": "stat", "query": {"promql": 'up{job="ingest"}'}},
        {"id": "up-table", "title": "Targets", "type": "table", "query": {"promql": "up"}},
    ]
    board = await create(api, await api.headers("admin", "read"), is_public=True, config={"panels": panels})
    base = f"/api/dashboards/{board['id']}/panels"
    async with browser(api.base_url) as client:
        line = (await client.get(f"{base}/up-line/data", params={"range": "6h"})).json()
        path, sent = prometheus.received[-1]
        assert path == "/prom/api/v1/query_range" and sent["query"] == "up"
        assert float(sent["end"]) - float(sent["start"]) == pytest.approx(6 * 3600, abs=1)
        assert int(sent["step"]) == 6 * 3600 // 240
        assert line["series"] == [{"name": '{job="ingest"}',
                                   "points": [[t, float(v)] for t, v in MATRIX["data"]["result"][0]["values"]]}]
        fixed = (await client.get(f"{base}/up-day/data", params={"range": "1h"})).json()
        assert fixed["range"] == "24h"  # the panel's own range wins over the selector
        assert (await client.get(f"{base}/up-now/data")).json()["value"] == 1.0
        assert prometheus.received[-1][0] == "/prom/api/v1/query"
        table = (await client.get(f"{base}/up-table/data")).json()
        assert table["columns"] == ["__name__", "job", "value"] and table["rows"] == [["up", "ingest", 1.0]]
