"""Signing in to the console over real HTTP, as a browser would: form token first, then the key."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import httpx

FORM_TOKEN: Final = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_META: Final = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


@asynccontextmanager
async def browser(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own cookie jar that does not follow redirects (tests look at them)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30, follow_redirects=False) as client:
        yield client


def form_token(html: str) -> str:
    found = FORM_TOKEN.search(html)
    assert found is not None, "the page has no form token"
    return found.group(1)


def csrf_of(html: str) -> str:
    found = CSRF_META.search(html)
    assert found is not None, "the page has no csrf-token meta"
    return found.group(1)


async def post_sign_in(client: httpx.AsyncClient, api_key: str, next_path: str | None = None,
                       **headers: str) -> httpx.Response:
    page = await client.get("/sign-in")
    assert page.status_code == 200
    form = {"api_key": api_key, "csrf_token": form_token(page.text)}
    if next_path is not None:
        form["next"] = next_path
    return await client.post("/sign-in", data=form, headers=headers)


async def signed_in(client: httpx.AsyncClient, api_key: str) -> str:
    """Signs the client in; the session's CSRF token as the pool page carries it ("" when it redirects)."""
    answer = await post_sign_in(client, api_key)
    assert answer.status_code == 303, answer.text
    home = await client.get("/")
    if home.status_code == 200:
        return csrf_of(home.text)
    return ""
