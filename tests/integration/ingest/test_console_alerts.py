"""The alerts, rules and channels pages over real HTTP: who sees them, what they carry, escaping."""

from __future__ import annotations

import json
import re
from typing import Any, Final
from urllib.parse import quote, urlencode

import pytest
from markupsafe import escape

from tests.integration.ingest.conftest import Api
from tests.integration.ingest.console_helpers import CSP, browser, signed_in

pytestmark = pytest.mark.integration

PAGES: Final = ("/alerts", "/alerts?status=firing&severity=critical", "/alerts/1", "/rules", "/channels")
SCRIPT_XSS: Final = "<script>alert(1)</script>"
ATTRIBUTE_XSS: Final = '"><img src=x onerror=alert(1)>'
PAGE_DATA: Final = re.compile(r'<script type="application/json" id="page-data">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def module_settings_overrides() -> dict[str, Any]:
    return {"api_key_cache_ttl_s": 0.0}


def page_data(html: str) -> dict[str, Any]:
    found = PAGE_DATA.search(html)
    assert found is not None, "the page has no page-data block"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def assert_no_inline_code(html: str) -> None:
    for tag in re.findall(r"<script[^>]*>", html):
        assert ' src="/static/' in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\son[a-z]+=|\sstyle=|javascript:", html)


async def miner_key(api: Api, miner: str) -> str:
    _, key = await api.container.keys.create(f"miner {miner}", [f"miner:{miner}"])
    return key


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_without_a_session_sends_the_browser_to_sign_in(module_api: Api, path: str) -> None:
    async with browser(module_api.base_url) as client:
        answer = await client.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/sign-in?" + urlencode({"next": path})


@pytest.mark.parametrize("path", PAGES)
async def test_a_read_key_gets_each_page_with_the_csp_and_no_write_controls(module_api: Api, path: str) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read"))
        page = await client.get(path)
        assert page.status_code == 200, page.text
        assert page.headers["content-security-policy"] == CSP
        assert page.headers["content-type"].startswith("text/html")
        assert_no_inline_code(page.text)
        assert 'data-ready="0"' in page.text
        assert page_data(page.text).get("can_write") in (None, False)
        for control in ('data-field="resolve"', 'data-field="silence-form"', ">Change</th>"):
            assert control not in page.text, (path, control)


@pytest.mark.parametrize("path", ["/alerts/7", "/rules", "/channels"])
async def test_an_admin_key_gets_the_write_controls(module_api: Api, path: str) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read", "admin"))
        page = await client.get(path)
        assert page.status_code == 200
        assert_no_inline_code(page.text)
        assert page_data(page.text)["can_write"] is True
        if path.startswith("/alerts/"):
            assert page_data(page.text)["alert_id"] == 7
            assert 'data-field="resolve"' in page.text and 'data-field="silence-form"' in page.text
        else:
            assert ">Change</th>" in page.text


async def test_the_filters_travel_in_the_url_and_reach_the_page(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read"))
        query = {"status": "resolved", "severity": "warning", "rule": "HashrateDrop", "label": "worker=rig-1",
                 "fingerprint": "abc123"}
        page = await client.get("/alerts", params=query)
        assert page.status_code == 200
        assert page_data(page.text)["filters"] == {**query, "miner": None}
        # Only the chosen status's section is drawn; the form shows the choices made.
        assert 'data-section="resolved"' in page.text and 'data-section="firing"' not in page.text
        assert '<option value="warning" selected>' in page.text
        assert 'value="worker=rig-1"' in page.text
        # Empty fields (a submitted form with nothing typed) are no filter.
        blank = await client.get("/alerts", params={"status": "", "severity": "", "rule": "", "label": ""})
        assert blank.status_code == 200, blank.text
        filters = page_data(blank.text)["filters"]
        assert filters == {"status": None, "severity": None, "rule": None, "label": None, "fingerprint": None,
                           "miner": None}
        assert all(f'data-section="{s}"' in blank.text for s in ("firing", "pending", "resolved"))


async def test_a_miner_key_sees_its_own_alerts_and_channels_only(module_api: Api) -> None:
    miner = "bc1q" + "m" * 10
    async with browser(module_api.base_url) as client:
        await signed_in(client, await miner_key(module_api, miner))
        own = await client.get("/alerts")
        assert own.status_code == 200
        assert page_data(own.text)["filters"]["miner"] == miner
        assert page_data(own.text)["live_miner"] == miner
        assert (await client.get("/alerts", params={"miner": miner})).status_code == 200
        other = await client.get("/alerts", params={"miner": "someone-else"})
        assert other.status_code == 403
        assert other.headers["content-security-policy"] == CSP
        assert "someone-else" not in other.text and "data-section" not in other.text
        # Rules are pool-wide: not a miner's to read (the API refuses them too).
        rules = await client.get("/rules")
        assert rules.status_code == 403 and 'data-field="rules"' not in rules.text
        assert (await client.get("/api/alert-rules")).status_code == 403
        channels = await client.get("/channels")
        assert channels.status_code == 200
        alert = await client.get("/alerts/5")
        assert alert.status_code == 200 and page_data(alert.text)["can_write"] is False
        assert 'data-field="resolve"' not in alert.text


async def test_a_key_without_read_gets_the_forbidden_page(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("ingest"))
        for path in ("/alerts", "/alerts/1", "/rules", "/channels"):
            page = await client.get(path)
            assert page.status_code == 403, path
            assert "read" in page.text and "data-section" not in page.text


@pytest.mark.parametrize("hostile", [SCRIPT_XSS, ATTRIBUTE_XSS])
async def test_hostile_filter_text_comes_out_escaped(module_api: Api, hostile: str) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read", "admin", name=f"ops {hostile}"))
        page = await client.get("/alerts", params={"rule": hostile, "label": hostile, "fingerprint": hostile})
        assert page.status_code == 200
        assert hostile not in page.text
        assert "<img" not in page.text and "<script>alert" not in page.text
        # Inside the JSON block too: `<` is escaped there, so the block cannot be closed early.
        assert page_data(page.text)["filters"]["rule"] == hostile
        for path in ("/rules", "/channels", "/alerts/1"):
            other = await client.get(path)
            assert hostile not in other.text and str(escape(f"ops {hostile}")) in other.text, path


async def test_a_hostile_miner_filter_comes_out_escaped(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read"))
        page = await client.get("/alerts", params={"miner": SCRIPT_XSS})
        assert page.status_code == 200  # printable ASCII: a miner name the API accepts
        assert SCRIPT_XSS not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert page_data(page.text)["filters"]["miner"] == SCRIPT_XSS


async def test_names_stored_through_the_api_never_reach_the_html(module_api: Api) -> None:
    """Rule, channel and alert names are drawn by the page's script with textContent, never served."""
    admin = await module_api.headers("admin")
    rule = {"name": f"rule {SCRIPT_XSS}", "metric": "worker_hashrate", "operator": "<", "threshold": 1e12,
            "window": "1h", "duration": "1m", "severity": "warning"}
    created_rule = await module_api.client.post("/api/alert-rules", json=rule, headers=admin)
    assert created_rule.status_code == 201, created_rule.text
    channel = {"name": f"ch {ATTRIBUTE_XSS}", "type": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}}
    created_channel = await module_api.client.post("/api/alert-channels", json=channel, headers=admin)
    assert created_channel.status_code == 201, created_channel.text
    raised = await module_api.client.post("/api/alerts", headers=admin, json={
        "name": f"alert {SCRIPT_XSS}", "severity": "critical", "labels": {"worker": ATTRIBUTE_XSS},
        "description": "hostile"})
    assert raised.status_code in (200, 201), raised.text
    alert_id = raised.json()["id"]
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read", "admin"))
        for path in ("/rules", "/channels", "/alerts", f"/alerts/{alert_id}"):
            page = await client.get(path)
            assert page.status_code == 200
            assert SCRIPT_XSS not in page.text and ATTRIBUTE_XSS not in page.text, path


async def test_the_pages_writes_work_with_the_session_and_its_csrf_token(module_api: Api) -> None:
    """What the alert page's buttons send: resolve and silence through the cookie, with X-CSRF-Token."""
    async with browser(module_api.base_url) as client:
        csrf = await signed_in(client, await module_api.key("read", "admin"))
        labels = {"alertname": "PoolHashrateLow", "pool": "main", "worker": "rig-7"}
        raised = await client.post("/api/alerts", headers={"X-CSRF-Token": csrf}, json={
            "name": "PoolHashrateLow", "severity": "warning", "labels": labels, "description": "by test"})
        assert raised.status_code == 201, raised.text
        alert = raised.json()
        matchers = [{"name": k, "op": "=", "value": v} for k, v in sorted(alert["labels"].items())]
        refused = await client.post("/api/silences", json={"matchers": matchers, "duration": "2h"})
        assert refused.status_code == 403
        silence = await client.post("/api/silences", headers={"X-CSRF-Token": csrf},
                                    json={"matchers": matchers, "duration": "2h", "comment": "from the page"})
        assert silence.status_code == 201, silence.text
        assert silence.json()["matchers"] == matchers and silence.json()["state"] == "active"
        bad = await client.post("/api/silences", headers={"X-CSRF-Token": csrf},
                                json={"matchers": [{"name": "worker", "op": "=~", "value": "("}], "duration": "2h"})
        assert bad.status_code == 422
        assert bad.json()["details"][0]["field"].startswith("body.matchers[0]")
        resolved = await client.put(f"/api/alerts/{alert['id']}/resolve", headers={"X-CSRF-Token": csrf})
        assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"


async def test_a_rule_edit_refused_by_the_api_names_the_field(module_api: Api) -> None:
    """The rules page shows these field names next to the inputs it built for them."""
    admin = await module_api.headers("admin")
    rule = {"name": "hashrate floor", "metric": "worker_hashrate", "operator": "<", "threshold": 1e12,
            "window": "1h", "duration": "1m", "severity": "warning"}
    created = await module_api.client.post("/api/alert-rules", json=rule, headers=admin)
    assert created.status_code == 201, created.text
    body = {k: v for k, v in created.json().items() if k != "id"}
    answer = await module_api.client.put(f"/api/alert-rules/{created.json()['id']}", headers=admin,
                                         json={**body, "operator": "~", "duration": "soon"})
    assert answer.status_code == 422
    fields = {d["field"] for d in answer.json()["details"]}
    assert {"body.operator", "body.duration"} <= fields


async def test_hostile_requests_get_4xx_never_5xx(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read"))
        probes = [
            "/alerts?status=burning", "/alerts?severity=%00", "/alerts?rule=" + "r" * 201,
            "/alerts?label=" + "l" * 201, "/alerts?fingerprint=" + "f" * 201, "/alerts?miner=a%20b",
            "/alerts?miner=" + "m" * 129, "/alerts?miner=", "/alerts/0", "/alerts/-1", "/alerts/abc",
            "/alerts/" + "9" * 30, "/alerts/1.5", "/alerts/%00", "/rules/1", "/channels/1", "/alerts/1/resolve",
        ]
        for path in probes:
            answer = await client.get(path)
            assert 400 <= answer.status_code < 500, (path, answer.status_code)
            assert SCRIPT_XSS not in answer.text
        for method in ("POST", "PUT", "DELETE"):
            for path in ("/alerts", "/alerts/1", "/rules", "/channels"):
                answer = await client.request(method, path)
                assert 400 <= answer.status_code < 500, (method, path, answer.status_code)


async def test_the_alert_link_of_the_pool_page_opens_the_filtered_list(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read"))
        fingerprint = "0f" * 16
        page = await client.get("/alerts?fingerprint=" + quote(fingerprint))
        assert page.status_code == 200
        assert page_data(page.text)["filters"]["fingerprint"] == fingerprint

