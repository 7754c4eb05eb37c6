"""Dashboards over HTTP: create, read, list, update, delete, and who may do which."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.ingest.conftest import Api

pytestmark = pytest.mark.integration

MAX_CONFIG_BYTES = 1024
PANEL = {"id": "rate", "title": "Hashrate", "type": "stat",
         "query": {"endpoint": "/api/pool/stats", "field": "hashrate.1h"}}


@pytest.fixture(scope="module")
def module_settings_overrides() -> dict[str, Any]:
    return {"max_dashboard_config_bytes": MAX_CONFIG_BYTES}


async def create(api: Api, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"name": "Pool overview", "description": "d", "config": {"panels": [PANEL]}, "is_public": False, **fields}
    response = await api.client.post("/api/dashboards", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_create_and_read_back(module_api: Api) -> None:
    owner = await module_api.headers("admin", "read")
    created = await create(module_api, owner, config={"rows": [1, {"a": None}], "title": "x'; DROP TABLE x;--"})
    assert created["is_owner"] is True and created["is_public"] is False
    response = await module_api.client.get(f"/api/dashboards/{created['id']}", headers=owner)
    assert response.status_code == 200
    assert response.json() == created


async def test_private_dashboard_is_invisible_to_others(module_api: Api) -> None:
    api = module_api
    owner, other = await api.headers("admin", "read"), await api.headers("admin", "read")
    private = await create(api, owner)
    url = f"/api/dashboards/{private['id']}"
    assert (await api.client.get(url, headers=owner)).status_code == 200
    for headers in (other, {}):
        response = await api.client.get(url, headers=headers)
        assert response.status_code == 404  # never 403: it does not exist for them
        assert set(response.json()) == {"error", "details"}
    # Nor can another key change or delete it, and the answer is the same 404.
    assert (await api.client.put(url, json={"name": "mine now"}, headers=other)).status_code == 404
    assert (await api.client.patch(url, json={"is_public": True}, headers=other)).status_code == 404
    assert (await api.client.delete(url, headers=other)).status_code == 404
    assert (await api.client.get(url, headers=owner)).json()["name"] == "Pool overview"
    # Not in their list either.
    listed = (await api.client.get("/api/dashboards", headers=other)).json()["dashboards"]
    assert private["id"] not in [d["id"] for d in listed]
    assert private["id"] in [d["id"] for d in (await api.client.get("/api/dashboards", headers=owner)).json()["dashboards"]]


async def test_public_dashboard_is_readable_without_a_key(module_api: Api) -> None:
    api = module_api
    owner, other = await api.headers("admin", "read"), await api.headers("admin", "read")
    public = await create(api, owner, is_public=True, name="Shared")
    url = f"/api/dashboards/{public['id']}"
    anonymous = await api.client.get(url)
    assert anonymous.status_code == 200
    assert anonymous.json()["name"] == "Shared" and anonymous.json()["is_owner"] is False
    # A key without the read scope may read a public dashboard too.
    assert (await api.client.get(url, headers=await api.headers("ingest"))).status_code == 200
    assert public["id"] in [d["id"] for d in (await api.client.get("/api/dashboards")).json()["dashboards"]]
    # Visible to others, but only the owner changes it: 403 (they can see it exists).
    assert (await api.client.patch(url, json={"name": "taken"}, headers=other)).status_code == 403
    assert (await api.client.delete(url, headers=other)).status_code == 403
    assert (await api.client.get(url)).json()["name"] == "Shared"


async def test_owner_updates_and_deletes(module_api: Api) -> None:
    api = module_api
    owner = await api.headers("admin", "read")
    board = await create(api, owner, description="keep me")
    url = f"/api/dashboards/{board['id']}"
    patched = await api.client.patch(url, json={"is_public": True, "config": {"v": 2}}, headers=owner)
    assert patched.status_code == 200, patched.text
    assert (patched.json()["is_public"], patched.json()["config"], patched.json()["description"]) == (
        True, {"v": 2}, "keep me")
    replaced = await api.client.put(url, json={"name": "Renamed"}, headers=owner)
    assert replaced.status_code == 200
    assert {k: replaced.json()[k] for k in ("name", "description", "config", "is_public")} == {
        "name": "Renamed", "description": "", "config": {}, "is_public": False}
    assert replaced.json()["updated_at"] >= board["updated_at"]
    assert (await api.client.delete(url, headers=owner)).status_code == 204
    assert (await api.client.get(url, headers=owner)).status_code == 404
    assert (await api.client.delete(url, headers=owner)).status_code == 404


async def test_scopes_and_owner_without_read(module_api: Api) -> None:
    api = module_api
    body = {"name": "n", "config": {}}
    assert (await api.client.post("/api/dashboards", json=body)).status_code == 401
    assert (await api.client.post("/api/dashboards", json=body, headers=await api.headers("read"))).status_code == 403
    admin_only = await api.headers("admin")
    board = await create(api, admin_only)
    # Its owner, but every GET of a private dashboard needs `read`.
    assert (await api.client.get(f"/api/dashboards/{board['id']}", headers=admin_only)).status_code == 403


async def test_config_size_limit_and_bad_bodies(module_api: Api) -> None:
    api = module_api
    owner = await api.headers("admin", "read")
    big = {"name": "big", "config": {"blob": "x" * MAX_CONFIG_BYTES}}
    response = await api.client.post("/api/dashboards", json=big, headers=owner)
    assert response.status_code == 413
    assert str(MAX_CONFIG_BYTES) in response.json()["error"]
    assert response.json()["details"][0]["field"] == "body.config"
    board = await create(api, owner)
    patched = await api.client.patch(f"/api/dashboards/{board['id']}", json={"config": big["config"]}, headers=owner)
    assert patched.status_code == 413
    for bad, field in (({"name": "", "config": {}}, "body.name"), ({"name": "n", "config": [1]}, "body.config"),
                       ({"name": "n", "is_public": "yes"}, "body.is_public"),
                       ({"name": "n", "config": {"n": 2**70}}, "body.config"),
                       ({"name": "n", "owner": "someone"}, "body.owner")):
        response = await api.client.post("/api/dashboards", json=bad, headers=owner)
        assert response.status_code == 422, (bad, response.text)
        assert field in [d["field"] for d in response.json()["details"]], response.json()
    assert (await api.client.patch(f"/api/dashboards/{board['id']}", json={"name": None},
                                   headers=owner)).status_code == 422


async def test_unknown_and_malformed_ids_are_404(module_api: Api) -> None:
    headers = await module_api.headers("admin", "read")
    for dashboard_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid", "1%27%20OR%201=1"):
        assert (await module_api.client.get(f"/api/dashboards/{dashboard_id}", headers=headers)).status_code == 404
        assert (await module_api.client.delete(f"/api/dashboards/{dashboard_id}", headers=headers)).status_code == 404
