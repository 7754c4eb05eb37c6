"""Console pages: who may see them, the cookie on the JSON API, CSRF on writes, CSP, static files, escaping."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Endpoints, own_schema, unique_name
from tests.integration.ingest.conftest import Api, make_settings, serve
from tests.integration.ingest.console_helpers import CSP, browser, post_sign_in, signed_in

pytestmark = pytest.mark.integration

DASHBOARD = {"name": "wall", "config": {}}


@pytest.fixture(scope="module")
def module_settings_overrides() -> dict[str, Any]:
    return {"api_key_cache_ttl_s": 0.0}


@pytest.mark.parametrize("path", ["/", "/?pool=main"])
async def test_a_page_without_a_session_sends_the_browser_to_sign_in(module_api: Api, path: str) -> None:
    async with browser(module_api.base_url) as client:
        answer = await client.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/sign-in?next={quote(path, safe='')}"
        # A cookie naming no session is no session.
        client.cookies.set("chimera_session", "A" * 43)
        assert (await client.get(path)).status_code == 303
        client.cookies.set("chimera_session", "<script>" * 20)
        assert (await client.get(path)).status_code == 303


async def test_pages_carry_the_content_security_policy(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        sign_in = await client.get("/sign-in")
        assert sign_in.headers["content-security-policy"] == CSP
        await signed_in(client, await module_api.key("read"))
        pool = await client.get("/")
        assert pool.status_code == 200 and pool.headers["content-security-policy"] == CSP
        assert pool.headers["content-type"].startswith("text/html")
        # No inline script, handler or style in the page: only files and the JSON data block.
        for tag in re.findall(r"<script[^>]*>", pool.text):
            assert ' src="/static/' in tag or 'type="application/json"' in tag
        assert not re.search(r"\son[a-z]+=|\sstyle=", pool.text)
        assert 'data-field="hashrate-1h"' in pool.text and 'data-ready="0"' in pool.text


async def test_a_key_without_read_gets_the_forbidden_page(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("ingest", name="node key"))
        page = await client.get("/")
        assert page.status_code == 403
        assert page.headers["content-security-policy"] == CSP
        assert "read" in page.text and "node key" in page.text


async def test_a_miner_key_goes_to_its_own_miner_page(module_api: Api) -> None:
    miner = "bc1q/<script>alert(1)</script>"
    async with browser(module_api.base_url) as client:
        _, key = await module_api.container.keys.create("miner's own", [f"miner:{miner}"])
        answer = await post_sign_in(client, key)
        assert answer.status_code == 303
        home = await client.get("/")
        assert home.status_code == 303
        assert home.headers["location"] == "/miners/" + quote(miner, safe="")
        # Its navigation offers only what it can open: its miner, its alerts, its channels.
        alerts = await client.get("/alerts")
        assert alerts.status_code == 200
        links = re.findall(r'<nav aria-label="Sections">(.*?)</nav>', alerts.text, re.S)[0]
        assert re.findall(r'href="([^"]+)"', links) == ["/miners/" + quote(miner, safe=""), "/alerts", "/channels"]


async def test_the_cookie_reads_the_json_api(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        assert (await client.get("/api/pool/stats")).status_code == 401
        await signed_in(client, await module_api.key("read"))
        stats = await client.get("/api/pool/stats")
        assert stats.status_code == 200 and "hashrate" in stats.json()


async def test_a_cookie_write_needs_the_sessions_csrf_token(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        csrf = await signed_in(client, await module_api.key("read", "admin"))
        assert csrf
        missing = await client.post("/api/dashboards", json=DASHBOARD)
        assert missing.status_code == 403
        assert missing.json()["details"][0]["field"] == "header.x-csrf-token"
        wrong_token = ("y" if csrf.startswith("x") else "x") + csrf[1:]  # one character off, never the same
        wrong = await client.post("/api/dashboards", json=DASHBOARD, headers={"X-CSRF-Token": wrong_token})
        assert wrong.status_code == 403
        assert wrong.json()["details"][0]["field"] == "header.x-csrf-token"
        right = await client.post("/api/dashboards", json=DASHBOARD, headers={"X-CSRF-Token": csrf})
        assert right.status_code == 201, right.text
        # Reads need no token.
        assert (await client.get("/api/dashboards")).status_code == 200
    # A Bearer write is not asked for one.
    bearer = await module_api.client.post("/api/dashboards", json=DASHBOARD,
                                          headers=await module_api.headers("admin"))
    assert bearer.status_code == 201


async def test_static_files_are_served_with_long_cache_and_no_listing(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        version = await client.get("/static/vendor/uplot/VERSION")
        assert version.status_code == 200 and version.text.startswith("uPlot 1.")
        assert version.headers["content-type"].startswith("text/plain")
        await signed_in(client, await module_api.key("read"))
        page = (await client.get("/")).text
        script = re.search(r'src="(/static/vendor/uplot/uPlot\.iife\.min\.js\?v=[0-9a-f]+)"', page)
        assert script is not None
        uplot = await client.get(script.group(1))
        assert uplot.status_code == 200 and uplot.headers["content-type"].startswith("text/javascript")
        assert "immutable" in uplot.headers["cache-control"] and "max-age=31536000" in uplot.headers["cache-control"]
        again = await client.get(script.group(1), headers={"If-None-Match": uplot.headers["etag"]})
        assert again.status_code == 304
        for path in ("/static/", "/static/js", "/static/js/", "/static/../config.py",
                     "/static/%2e%2e/%2e%2e/config.py", "/static/vendor/uplot/../../templates/base.html"):
            assert (await client.get(path)).status_code == 404, path


async def test_names_are_escaped_where_a_person_sees_them(module_api: Api) -> None:
    xss = "<script>alert(1)</script>"
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read", name=f"ops {xss}"))
        page = await client.get("/")
        assert page.status_code == 200
        assert xss not in page.text
        assert "ops &lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    async with browser(module_api.base_url) as client:
        form = await client.get("/sign-in", params={"next": f'/"><script>alert(1)</script>'})
        assert xss not in form.text and "&lt;script&gt;" in form.text
        refused = await client.get("/", params={"pool": xss})
        assert refused.status_code in (303, 422)  # a pool name is letters, digits, . _ - only
        assert xss not in refused.text


async def test_hostile_requests_to_console_routes_get_4xx_never_5xx(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read"))
        probes = [
            ("GET", "/?pool=" + "a" * 65), ("GET", "/?pool=%00"), ("GET", "/?pool=a/b"),
            ("GET", "/sign-in?next=" + "x" * 3000), ("GET", "/static/" + "a" * 300),
            ("GET", "/static/js/pool.js?v=" + "f" * 100), ("GET", "/static/%00"),
            ("POST", "/"), ("PUT", "/sign-in"), ("DELETE", "/sign-out"),
        ]
        for method, path in probes:
            answer = await client.request(method, path)
            assert 400 <= answer.status_code < 500, (method, path, answer.status_code)
        for body in (b"", b"=", b"&&&", b"csrf_token", b"%", b"a=%zz", b"\xff\xfe", b"api_key=" + b"%00" * 100):
            answer = await client.post("/sign-in", content=body,
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert 400 <= answer.status_code < 500, (body, answer.status_code)
            answer = await client.post("/sign-out", content=body,
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert 400 <= answer.status_code < 500 or answer.status_code == 303, (body, answer.status_code)


async def test_the_console_can_be_turned_off(endpoints: Endpoints) -> None:
    async with own_schema(endpoints) as schema:
        settings = make_settings(endpoints, unique_name("t") + ".", schema, console_enabled=False)
        async for api in serve(settings):
            for path in ("/", "/sign-in", "/static/vendor/uplot/VERSION"):
                assert (await api.client.get(path)).status_code == 404, path
            api.client.cookies.set("chimera_session", "A" * 43)
            assert (await api.client.get("/api/pool/stats")).status_code == 401
