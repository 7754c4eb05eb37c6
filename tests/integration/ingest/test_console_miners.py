"""The Miners pages over real HTTP: who may see them, the view in the query, 404 and 403 pages, escaping.

The pages are shells filled from the JSON API by their scripts; what is checked here is what the
server itself answers. Miner names are printable ASCII and may hold `<`, `>`, `"` and `/`; worker
names cannot (letters, digits, `.`, `_`, `-`), so a hostile worker name only reaches a page by a row
written around the aggregator, and then only through the JSON the script draws as text.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

import asyncpg
import pytest

from tests.integration.ingest.conftest import Api
from tests.integration.ingest.console_helpers import CSP, browser, post_sign_in, signed_in

pytestmark = pytest.mark.integration

SCRIPT_XSS: Final = "<script>alert(1)</script>"
ATTRIBUTE_XSS: Final = '"><img/src=x/onerror=alert(1)>'  # a miner name has no spaces
HOSTILE_WORKER: Final = "<img src=x onerror=alert(1)>"
PAGE_DATA: Final = re.compile(r'<script type="application/json" id="page-data">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def module_settings_overrides() -> dict[str, Any]:
    return {"api_key_cache_ttl_s": 0.0}


async def insert_worker_minute(db: asyncpg.Pool, pool: str, miner: str, worker: str) -> None:
    """One complete minute of one worker, as the aggregator writes it: the pool now knows the miner."""
    ts = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    await db.execute(
        "INSERT INTO miner_metrics (pool, miner, worker, ts, accepted, rejected, stale, difficulty_accepted,"
        " best_difficulty, last_share_at) VALUES ($1, $2, $3, $4, 3, 1, 0, 30, 12, $4)",
        pool, miner, worker, ts)


def page_data(html: str) -> dict[str, Any]:
    found = PAGE_DATA.search(html)
    assert found is not None, "the page has no page-data block"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def miner_path(miner: str, pool: str) -> str:
    return f"/miners/{quote(miner, safe='')}?pool={pool}"


def assert_no_inline_code(html: str) -> None:
    for tag in re.findall(r"<script[^>]*>", html):
        assert ' src="/static/' in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\son[a-z]+=|\sstyle=", html)


@pytest.mark.parametrize("path", ["/miners", "/miners?q=al&sort=miner&order=asc", "/miners/alice"])
async def test_without_a_session_the_browser_is_sent_to_sign_in(module_api: Api, path: str) -> None:
    async with browser(module_api.base_url) as client:
        answer = await client.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/sign-in?next={quote(path, safe='')}"


async def test_the_list_page_carries_its_view_from_the_query(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read"))
        page = await client.get("/miners", params={"q": "al", "sort": "miner", "order": "asc", "limit": "25",
                                                   "offset": "50"})
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CSP
        assert_no_inline_code(page.text)
        view = page_data(page.text)
        assert {k: view[k] for k in ("pool", "q", "sort", "order", "limit", "offset")} == {
            "pool": "main", "q": "al", "sort": "miner", "order": "asc", "limit": 25, "offset": 50}
        # The sorted column says so before any script runs; the others say "none".
        assert re.search(r'data-sort="miner"[^>]*\s+aria-sort="ascending"', page.text)
        assert len(re.findall(r'aria-sort="none"', page.text)) == 4
        assert 'value="al"' in page.text and 'data-ready="0"' in page.text
        # Defaults when the query is empty: the top by hashrate.
        plain = page_data((await client.get("/miners")).text)
        assert (plain["sort"], plain["order"], plain["limit"], plain["offset"]) == ("hashrate_1h", "desc", 50, 0)


@pytest.mark.parametrize("params, field", [
    ({"sort": "worker"}, "sort"), ({"order": "up"}, "order"), ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"), ({"offset": "-1"}, "offset"), ({"offset": "1000001"}, "offset"),
    ({"q": "a b"}, "q"), ({"q": "а"}, "q"), ({"q": "x" * 129}, "q"), ({"pool": "a/b"}, "pool"),
    ({"limit": "ten"}, "limit"),
])
async def test_the_list_refuses_what_the_api_refuses(module_api: Api, params: dict[str, str], field: str) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read"))
        page = await client.get("/miners", params=params)
        api = await client.get("/api/miners", params=params)
        assert page.status_code == api.status_code == 422, (page.text, api.text)
        assert [d["field"] for d in page.json()["details"]] == [f"query.{field}"]
        assert page.json()["details"] == api.json()["details"]


@pytest.mark.parametrize("q", [SCRIPT_XSS, ATTRIBUTE_XSS])
async def test_a_hostile_search_comes_back_escaped(module_api: Api, q: str) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read"))
        page = await client.get("/miners", params={"q": q})
        assert page.status_code == 200
        assert q not in page.text
        assert "<img" not in page.text and "alert(1)</script>" not in page.text
        assert page_data(page.text)["q"] == q  # the JSON block carries it intact, and inert


async def test_a_miner_key_is_sent_from_the_list_to_its_own_page(module_api: Api) -> None:
    miner = f"bc1q/{SCRIPT_XSS}"
    await insert_worker_minute(module_api.container.pool, "main", miner, "rig1")
    _, key = await module_api.container.keys.create("miner's own", [f"miner:{miner}"])
    async with browser(module_api.base_url) as client:
        assert (await post_sign_in(client, key)).status_code == 303
        for path in ("/miners", "/miners?sort=miner"):
            answer = await client.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"] == "/miners/" + quote(miner, safe="")
        # A name with '/' is still one miner's page.
        own = await client.get(answer.headers["location"])
        assert own.status_code == 200 and page_data(own.text)["miner"] == miner


@pytest.mark.parametrize("miner", [SCRIPT_XSS, ATTRIBUTE_XSS, "alice.rig-pool_1"])
async def test_a_known_miners_page_shows_its_name_escaped(module_api: Api, miner: str) -> None:
    pool = "console-miners-known"
    await insert_worker_minute(module_api.container.pool, pool, miner, "rig1")
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read"))
        page = await client.get(miner_path(miner, pool))
        assert page.status_code == 200, page.text
        assert page.headers["content-security-policy"] == CSP
        assert page.headers["content-type"].startswith("text/html")
        assert_no_inline_code(page.text)
        if miner != "alice.rig-pool_1":
            assert miner not in page.text
            assert "<img" not in page.text and "alert(1)</script>" not in page.text
        heading = re.search(r'<h1>Miner <span data-field="miner-name">(.*?)</span></h1>', page.text)
        assert heading is not None
        assert heading.group(1) == miner.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
            .replace('"', "&#34;").replace("'", "&#39;")
        assert page_data(page.text) == {"pool": pool, "miner": miner, "windows": ["1m", "5m", "15m", "1h", "24h"]}
        assert 'data-field="hashrate-1h"' in page.text and 'data-field="workers"' in page.text


async def test_a_hostile_worker_name_never_reaches_the_html(module_api: Api) -> None:
    pool = "console-miners-workers"
    await insert_worker_minute(module_api.container.pool, pool, "carol", HOSTILE_WORKER)
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read"))
        page = await client.get(miner_path("carol", pool))
        assert page.status_code == 200
        assert "<img" not in page.text and "onerror" not in page.text
        # It reaches the script as JSON only, which draws it as text.
        stats = await client.get("/api/miners/carol/stats", params={"pool": pool})
        assert stats.headers["content-type"] == "application/json"
        assert [w["worker"] for w in stats.json()["workers"]] == [HOSTILE_WORKER]


@pytest.mark.parametrize("miner", ["nobody", SCRIPT_XSS])
async def test_an_unknown_miner_is_the_404_page(module_api: Api, miner: str) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read"))
        page = await client.get(miner_path(miner, "console-miners-empty"))
        assert page.status_code == 404
        assert page.headers["content-security-policy"] == CSP
        assert page.headers["content-type"].startswith("text/html")
        assert "never seen miner" in page.text
        assert SCRIPT_XSS not in page.text and "alert(1)</script>" not in page.text
        assert 'id="page-data"' not in page.text


async def test_a_miner_key_sees_its_own_page_and_the_403_page_for_any_other(module_api: Api) -> None:
    pool = "console-miners-keys"
    db = module_api.container.pool
    await insert_worker_minute(db, pool, "dave", "rig1")
    await insert_worker_minute(db, pool, "erin", "rig1")
    _, key = await module_api.container.keys.create("dave's key", ["miner:dave"])
    async with browser(module_api.base_url) as client:
        assert (await post_sign_in(client, key)).status_code == 303
        own = await client.get(miner_path("dave", pool))
        assert own.status_code == 200 and page_data(own.text)["miner"] == "dave"
        # A miner's key has no list to go back to.
        assert 'href="/miners?pool=' not in own.text
        for other in ("erin", "nobody"):  # known or not: the same refusal, nothing learnt
            page = await client.get(miner_path(other, pool))
            assert page.status_code == 403, other
            assert page.headers["content-security-policy"] == CSP
            assert "dave" in page.text and 'id="page-data"' not in page.text


async def test_a_key_without_read_gets_the_forbidden_page(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("ingest", name="node key"))
        for path in ("/miners", "/miners/alice"):
            page = await client.get(path)
            assert page.status_code == 403, path
            assert "read" in page.text


@pytest.mark.parametrize("path, status", [
    ("/miners/a%20b", 422), ("/miners/%D0%B0lice", 422), ("/miners/" + "m" * 129, 422), ("/miners/%00", 422),
    ("/miners/alice?pool=a/b", 422), ("/miners/alice?pool=" + "p" * 65, 422),
    ("/miners/", 422), ("/miners/alice/extra", 404),  # a miner may hold '/': that one is unknown
])
async def test_bad_miner_paths_are_4xx(module_api: Api, path: str, status: int) -> None:
    async with browser(module_api.base_url) as client:
        await signed_in(client, await module_api.key("read"))
        answer = await client.get(path)
        assert answer.status_code == status, (path, answer.status_code, answer.text[:300])
