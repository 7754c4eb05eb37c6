"""Console sessions as values: tokens, hashes, secret comparison, expiry and where `next=` may lead."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.domain.sessions import (
    HOME,
    MAX_NEXT_CHARS,
    expires_at,
    hash_token,
    is_live,
    local_next,
    new_token,
    plausible_token,
    same_secret,
)

pytestmark = pytest.mark.unit


def test_tokens_are_fresh_urlsafe_and_plausible() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert len(token) == 43 and plausible_token(token)


@pytest.mark.parametrize("token", ["", "a" * 65, "abc def", "<script>", "ä" * 10, "abc\x00", "a/b", "a=b"])
def test_implausible_tokens_are_refused_before_any_lookup(token: str) -> None:
    assert not plausible_token(token)


def test_the_stored_hash_is_the_tokens_sha256() -> None:
    token = new_token()
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert hash_token(token) != hash_token(new_token())


@pytest.mark.parametrize(("sent", "held", "same"), [
    ("abc", "abc", True),
    ("abc", "abd", False),
    ("ab", "abc", False),
    (None, "abc", False),
    ("", "", False),  # an empty held secret matches nothing, not even an empty one
    ("\ud800", "abc", False),  # a lone surrogate from a form is compared, not an error
])
def test_secrets_are_compared_whole(sent: str | None, held: str, same: bool) -> None:
    assert same_secret(sent, held) is same


def test_a_session_lets_in_strictly_before_its_expiry() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    expiry = expires_at(created, 43_200)
    assert expiry == created + timedelta(hours=12)
    assert is_live(expiry, expiry - timedelta(microseconds=1))
    assert not is_live(expiry, expiry)
    assert not is_live(expiry, expiry + timedelta(days=1))


@pytest.mark.parametrize("target", ["/", "/alerts", "/miners/bc1q%2Fx?window=1h#top", "/a//b", "/?next=//x"])
def test_local_paths_are_followed(target: str) -> None:
    assert local_next(target) == target


@pytest.mark.parametrize("target", [
    None, "", "//evil.example", "///evil.example", "/\\evil.example", "/x\\y", "https://evil.example/",
    "javascript:alert(1)", "alerts", " /alerts", "/alerts\r\nSet-Cookie: x=1", "/a\tb", "/\x7f",
    "/" + "a" * MAX_NEXT_CHARS,
])
def test_anything_else_goes_home(target: str | None) -> None:
    assert local_next(target) == HOME


@given(st.text(max_size=300))
@settings(max_examples=500, deadline=None)
def test_next_never_leaves_the_site(target: str) -> None:
    chosen = local_next(target)
    assert chosen in (HOME, target)
    parts = urlsplit(chosen)
    assert chosen.startswith("/") and not chosen.startswith("//") and "\\" not in chosen
    assert not parts.scheme and not parts.netloc
