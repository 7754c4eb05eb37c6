"""Who may read and change a dashboard, and the config size limit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingest.adapters.dashboards import check_config_size, config_size_bytes
from services.ingest.domain.dashboards import (
    Access,
    ConfigNotStorable,
    ConfigTooLarge,
    Dashboard,
    Viewer,
    read_access,
    write_access,
)

pytestmark = pytest.mark.unit

T = datetime(2026, 1, 1, tzinfo=UTC)


def board(*, public: bool, owner: str = "owner-key") -> Dashboard:
    return Dashboard("d1", "n", "", {}, public, owner, T, T)


@pytest.mark.parametrize(
    ("public", "viewer", "expected"),
    [
        (True, Viewer(None, can_read=False), Access.ALLOWED),  # public: no key needed
        (True, Viewer("other-key", can_read=False), Access.ALLOWED),  # nor the read scope
        (True, Viewer("other-key", can_read=True), Access.ALLOWED),
        (False, Viewer(None, can_read=False), Access.NOT_FOUND),
        (False, Viewer("other-key", can_read=True), Access.NOT_FOUND),  # never 403: it does not exist for them
        (False, Viewer("other-key", can_read=False), Access.NOT_FOUND),
        (False, Viewer("owner-key", can_read=True), Access.ALLOWED),
        (False, Viewer("owner-key", can_read=False), Access.FORBIDDEN),
    ],
)
def test_read_access(public: bool, viewer: Viewer, expected: Access) -> None:
    assert read_access(board(public=public), viewer) is expected


@pytest.mark.parametrize(
    ("public", "key", "expected"),
    [
        (False, "owner-key", Access.ALLOWED),
        (True, "owner-key", Access.ALLOWED),
        (False, "other-key", Access.NOT_FOUND),
        (True, "other-key", Access.FORBIDDEN),
    ],
)
def test_write_access(public: bool, key: str, expected: Access) -> None:
    assert write_access(board(public=public), key) is expected


def test_config_size_is_compact_json() -> None:
    assert config_size_bytes({}) == 2
    assert config_size_bytes({"a": [1, 2]}) == len(b'{"a":[1,2]}')
    check_config_size({"a": "x" * 10}, 18)
    with pytest.raises(ConfigTooLarge) as caught:
        check_config_size({"a": "x" * 11}, 18)
    assert (caught.value.size_bytes, caught.value.max_bytes) == (19, 18)


def test_config_that_cannot_be_stored() -> None:
    with pytest.raises(ConfigNotStorable):
        config_size_bytes({"n": 2**70})
    for nul in ({"a\x00": 1}, {"a": ["ok", {"b": "x\x00"}]}):
        with pytest.raises(ConfigNotStorable):
            config_size_bytes(nul)
    assert config_size_bytes({"a": "\\u0000"}) > 0  # an escaped backslash is just text
    nested: dict = {}  # type: ignore[type-arg]
    inner = nested
    for _ in range(300):
        inner["x"] = {}
        inner = inner["x"]
    with pytest.raises(ConfigNotStorable):
        config_size_bytes(nested)
