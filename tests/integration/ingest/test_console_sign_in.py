"""Signing in to the console with an API key: the cookie, the checks on the form, `next`, signing out."""

from __future__ import annotations

import re
import secrets
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest

from services.ingest.adapters.sessions import SessionStore
from services.ingest.domain.sessions import hash_token
from tests.conftest import Endpoints, own_schema, unique_name
from tests.integration.ingest.conftest import Api, make_settings, serve
from tests.integration.ingest.console_helpers import (
    browser,
    csrf_of,
    form_token,
    post_sign_in,
    signed_in,
)

pytestmark = pytest.mark.integration

FAILURE_BURST = 3


@pytest.fixture(scope="module")
def module_settings_overrides() -> dict[str, Any]:
    return {"api_key_cache_ttl_s": 0.0, "metrics_cache_s": 0.0}


def _session_cookie(response: httpx.Response) -> SimpleCookie:
    header = next(v for v in response.headers.get_list("set-cookie") if v.startswith("chimera_session="))
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(header)
    return cookie


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = re.search(re.escape(f"{name}{{{wanted}}}") + r" ([0-9.e+]+)", text)
    return float(found.group(1)) if found else 0.0


async def test_a_good_key_gets_a_session_cookie_with_strict_flags(module_api: Api) -> None:
    key = await module_api.key("read", name="operator")
    async with browser(module_api.base_url) as client:
        answer = await post_sign_in(client, key)
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        raw = next(v for v in answer.headers.get_list("set-cookie") if v.startswith("chimera_session="))
        cookie = _session_cookie(answer)["chimera_session"]
        assert len(cookie.value) >= 43
        assert cookie["httponly"] is True
        assert cookie["samesite"].lower() == "strict"
        assert cookie["path"] == "/"
        assert cookie["max-age"] == "43200"
        assert "secure" not in raw.lower()  # plain http on loopback by default
        # Only the token's hash is stored, never the token.
        stored = await module_api.container.pool.fetchval(
            "SELECT count(*) FROM console_sessions WHERE token_hash = $1", hash_token(cookie.value))
        assert stored == 1
        assert await module_api.container.pool.fetchval(
            "SELECT count(*) FROM console_sessions WHERE token_hash = $1", cookie.value) == 0
        page = await client.get("/")
        assert page.status_code == 200
        assert "operator" in page.text and csrf_of(page.text)


async def test_a_bad_key_is_refused_and_counted_like_the_apis(endpoints: Endpoints) -> None:
    async with own_schema(endpoints) as schema:
        settings = make_settings(endpoints, unique_name("t") + ".", schema, auth_failures_burst=FAILURE_BURST,
                                 auth_failures_per_second=0.01, metrics_cache_s=0.0)
        async for api in serve(settings):
            good = await api.key("read")
            async with browser(api.base_url) as client:
                statuses = [(await post_sign_in(client, f"chm_{secrets.token_urlsafe(32)}")).status_code
                            for _ in range(FAILURE_BURST)]
                assert statuses == [401] * FAILURE_BURST
                refused = await post_sign_in(client, good)
                # The same failure limiter as the API: blocked, even with a good key.
                assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
                assert "chimera_session" not in refused.headers.get("set-cookie", "")
                assert 'data-field="sign-in-error"' in refused.text
                # ... and the API from the same address is blocked too.
                api_answer = await client.get("/api/pool/stats", headers={"Authorization": f"Bearer {good}"})
                assert api_answer.status_code == 429
            exposition = (await api.client.get("/metrics")).text
            assert _metric(exposition, "chimera_api_auth_failures_total", reason="unknown") == FAILURE_BURST
            assert _metric(exposition, "chimera_api_rate_limited_total", limit="auth_failures") == 2


async def test_the_secure_flag_follows_the_setting(endpoints: Endpoints) -> None:
    async with own_schema(endpoints) as schema:
        settings = make_settings(endpoints, unique_name("t") + ".", schema, console_cookie_secure=True,
                                 console_session_ttl_s=600)
        async for api in serve(settings):
            key = await api.key("read")
            async with browser(api.base_url) as client:
                page = await client.get("/sign-in")
                assert "secure" in page.headers["set-cookie"].lower()
                # httpx keeps a Secure cookie for https only; a browser behind TLS would send it back.
                client.cookies.set("chimera_sign_in", page.cookies["chimera_sign_in"])
                answer = await client.post("/sign-in", data={"api_key": key, "csrf_token": form_token(page.text)})
                assert answer.status_code == 303
                cookie = _session_cookie(answer)["chimera_session"]
                assert cookie["secure"] is True and cookie["max-age"] == "600"


@pytest.mark.parametrize(("target", "expected"), [
    ("/alerts?status=firing", "/alerts?status=firing"),
    ("//evil.example/x", "/"),
    ("https://evil.example/", "/"),
    ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"),
])
async def test_next_is_followed_only_to_a_local_path(module_api: Api, target: str, expected: str) -> None:
    key = await module_api.key("read")
    async with browser(module_api.base_url) as client:
        answer = await post_sign_in(client, key, target)
        assert answer.status_code == 303 and answer.headers["location"] == expected


async def test_a_form_without_its_token_or_from_another_origin_is_refused(module_api: Api) -> None:
    key = await module_api.key("read")
    async with browser(module_api.base_url) as client:
        await client.get("/sign-in")
        no_token = await client.post("/sign-in", data={"api_key": key})
        assert no_token.status_code == 403 and "chimera_session=" not in no_token.headers.get("set-cookie", "")
        wrong = await client.post("/sign-in", data={"api_key": key, "csrf_token": "x" * 43})
        assert wrong.status_code == 403
        elsewhere = await post_sign_in(client, key, Origin="http://evil.example")
        assert elsewhere.status_code == 403 and "chimera_session=" not in elsewhere.headers.get("set-cookie", "")
        here = await post_sign_in(client, key, Origin=module_api.base_url)
        assert here.status_code == 303


async def test_a_hostile_form_gets_a_4xx(module_api: Api) -> None:
    async with browser(module_api.base_url) as client:
        await client.get("/sign-in")
        too_big = await client.post("/sign-in", content=b"api_key=" + b"a" * 10_000,
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert too_big.status_code == 413
        as_json = await client.post("/sign-in", json={"api_key": "x"})
        assert as_json.status_code == 415
        not_ascii = await client.post("/sign-in", content="api_key=é".encode(),
                                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert not_ascii.status_code == 400
        bad_escape = await client.post("/sign-in", content=b"api_key=%ff%fe",
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert bad_escape.status_code == 400
        many = await client.post("/sign-in", content=b"&".join(b"f%d=1" % i for i in range(50)),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert many.status_code == 400


async def test_sign_out_needs_the_sessions_token_and_ends_it(module_api: Api) -> None:
    key = await module_api.key("read")
    async with browser(module_api.base_url) as client:
        csrf = await signed_in(client, key)
        wrong = await client.post("/sign-out", data={"csrf_token": "nope"})
        assert wrong.status_code == 403
        assert (await client.get("/")).status_code == 200  # still signed in
        token = client.cookies["chimera_session"]
        out = await client.post("/sign-out", data={"csrf_token": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/sign-in"
        assert 'chimera_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
        assert await module_api.container.pool.fetchval(
            "SELECT count(*) FROM console_sessions WHERE token_hash = $1", hash_token(token)) == 0
    async with browser(module_api.base_url) as replay:
        # Even a copy of the old cookie opens nothing now.
        replay.cookies.set("chimera_session", token)
        assert (await replay.get("/")).status_code == 303
        assert (await replay.get("/api/pool/stats")).status_code == 401


async def test_a_revoked_key_ends_its_sessions(module_api: Api) -> None:
    store = module_api.container.keys
    record, key = await store.create("soon revoked", {"read"})
    async with browser(module_api.base_url) as client:
        await signed_in(client, key)
        assert (await client.get("/api/pool/stats")).status_code == 200
        assert await store.revoke(record.id)
        assert (await client.get("/api/pool/stats")).status_code == 401
        page = await client.get("/")
        assert page.status_code == 303 and page.headers["location"].startswith("/sign-in?next=")
        assert await module_api.container.pool.fetchval(
            "SELECT count(*) FROM console_sessions WHERE key_id = $1", record.id) == 0


async def test_an_expired_session_lets_nobody_in(module_api: Api) -> None:
    key = await module_api.key("read")
    async with browser(module_api.base_url) as client:
        await signed_in(client, key)
        token = client.cookies["chimera_session"]
        await module_api.container.pool.execute(
            "UPDATE console_sessions SET created_at = now() - interval '2 days', "
            "expires_at = now() - interval '1 second' WHERE token_hash = $1", hash_token(token))
        assert (await client.get("/")).status_code == 303
        assert isinstance(module_api.container.sessions, SessionStore)


async def test_requests_with_the_cookie_count_as_the_keys_use(module_api: Api) -> None:
    store, authenticator = module_api.container.keys, module_api.container.authenticator
    record, key = await store.create("used from the console", {"read"})
    async with browser(module_api.base_url) as client:
        await signed_in(client, key)
        await authenticator.flush_usage()
        signed_in_at = await module_api.container.pool.fetchval(
            "SELECT last_used_at FROM api_keys WHERE id = $1", record.id)
        assert signed_in_at is not None  # the sign-in itself checked the key
        await module_api.container.pool.execute(
            "UPDATE api_keys SET last_used_at = now() - interval '3 days' WHERE id = $1", record.id)
        assert (await client.get("/api/pool/stats")).status_code == 200
        await authenticator.flush_usage()
        used_at = await module_api.container.pool.fetchval(
            "SELECT last_used_at FROM api_keys WHERE id = $1", record.id)
        assert used_at >= signed_in_at
