"""Custom metric series quotas per API key, over real HTTP: one key cannot lock the others out."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.http.auth import Scope
from tests.integration.ingest.conftest import Api

pytestmark = pytest.mark.integration

QUOTA = 3


@pytest.fixture(scope="module")
def module_settings_overrides() -> dict[str, Any]:
    # The shared cap stays far above the quota: any refusal here is the quota's. No /metrics
    # cache, so a scrape shows what was posted just before it.
    return {"custom_metrics_max_series_per_key": QUOTA, "custom_metrics_max_series": 100, "metrics_cache_s": 0}


async def test_a_key_at_its_quota_is_refused_while_another_key_still_creates_series(module_api: Api) -> None:
    api = module_api
    record_a, plaintext_a = await api.container.keys.create("quota-a", [Scope.INGEST])
    key_a = {"Authorization": f"Bearer {plaintext_a}"}
    key_b = await api.headers("ingest")

    async def post(headers: dict[str, str], rig: str, value: float = 1) -> Any:
        body = {"name": "rig_temperature", "value": value, "labels": {"rig": rig}}
        return await api.client.post("/api/metrics", json=body, headers=headers)

    for rig in ("a1", "a2", "a3"):
        assert (await post(key_a, rig)).status_code == 202
    refused = await post(key_a, "a4")
    assert refused.status_code == 422, refused.text
    assert "quota" in refused.json()["error"]
    assert refused.json()["details"] == [
        {"field": "body.labels", "message": f"new series refused: this API key's quota of {QUOTA} series is reached"}]
    # A still updates the series it has; B creates its own as if A were not there.
    assert (await post(key_a, "a1", 40)).status_code == 202
    for rig in ("b1", "b2", "b3"):
        assert (await post(key_b, rig)).status_code == 202

    response = await api.client.get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    exported = {s.labels["rig"]: s.value for s in families["rig_temperature"].samples}
    assert exported == {"a1": 40.0, "a2": 1.0, "a3": 1.0, "b1": 1.0, "b2": 1.0, "b3": 1.0}
    refusals = {(s.labels["key_id"], s.labels["reason"]): s.value
                for s in families["chimera_custom_metrics_refused"].samples if s.name.endswith("_total")}
    assert refusals == {(record_a.principal().key_id, "key_quota"): 1}
