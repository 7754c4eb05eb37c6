"""Prometheus-rule alerts through a real Alertmanager into the notifier: the project's
deploy/alertmanager/alertmanager.yml, rendered as `make up` renders it, checked by amtool,
then Debian's Alertmanager posting to the public API's webhook input with an `ingest` key ->
chimera.alerts -> the notifier -> a loopback webhook channel, firing then resolved; and the
same channels' delivery log.

Alerts are posted to Alertmanager's own API (`/api/v2/alerts`), as Prometheus posts them. The
route's group_wait and group_interval are cut to seconds for the test; everything else is the
file's.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from chimera.devstack.monitoring import ALERTMANAGER_CONFIG, render_alertmanager_config
from chimera.devstack.monitoring_bins import ensure_monitoring_binaries
from tests.conftest import Endpoints
from tests.e2e.conftest import stop_process
from tests.integration.conftest import free_port
from tests.integration.ingest.conftest import make_settings as ingest_settings
from tests.integration.ingest.conftest import serve
from tests.integration.notifier.receivers import HttpReceiver
from tests.integration.notifier.service import notifier_settings
from tests.integration.notifier.service import running as notifying
from tests.waiting import until

pytestmark = pytest.mark.e2e


def test_the_project_alertmanager_config_passes_amtool(tmp_path: Path) -> None:
    amtool = ensure_monitoring_binaries().amtool
    rendered = tmp_path / "alertmanager.yml"
    rendered.write_text(yaml.safe_dump(render_alertmanager_config(
        yaml.safe_load(ALERTMANAGER_CONFIG.read_text()), "http://127.0.0.1:8000/api/alertmanager/webhook",
        tmp_path / "key")))
    for config in (ALERTMANAGER_CONFIG, rendered):
        done = subprocess.run([str(amtool), "check-config", str(config)], capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


@asynccontextmanager
async def alertmanager(config: Path, data: Path) -> AsyncIterator[str]:
    """Debian's Alertmanager on a free port, single node; yields its URL."""
    port = free_port()
    binary = ensure_monitoring_binaries().alertmanager
    process = subprocess.Popen(
        [str(binary), f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
         f"--storage.path={data}", "--cluster.listen-address="],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            for _ in range(200):
                assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
                try:
                    if (await client.get(f"{url}/-/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("Alertmanager did not become ready")
        yield url
    finally:
        stop_process(process, timeout_s=15)


async def test_a_prometheus_alert_reaches_a_channel_through_alertmanager_and_resolves(
        endpoints: Endpoints, topic_prefix: str, db_schema: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_ALLOWED_NETWORKS", "127.0.0.0/8,::1")
    notifier = await notifier_settings(endpoints, topic_prefix, db_schema, tmp_path)
    monkeypatch.setenv("NOTIFIER_SECRET_KEYS", notifier.notifier_secret_keys.get_secret_value())  # type: ignore[union-attr]
    api_settings = ingest_settings(endpoints, topic_prefix, db_schema, http_port=free_port())
    async with HttpReceiver() as receiver:
        async for api in serve(api_settings):
            admin = await api.headers("admin", "read")
            key_file = tmp_path / "alertmanager-key"
            key_file.write_text(await api.key("ingest"))
            rendered = render_alertmanager_config(yaml.safe_load(ALERTMANAGER_CONFIG.read_text()),
                                                  f"{api.base_url}/api/alertmanager/webhook", key_file)
            # The route's waits cut from 10 s and 1 m, so the test takes seconds, not minutes.
            rendered["route"].update(group_wait="1s", group_interval="2s")
            config = tmp_path / "alertmanager.yml"
            config.write_text(yaml.safe_dump(rendered))
            channel = {"name": "oncall", "type": "webhook", "config": {"url": receiver.url("/hook")},
                       "group_wait": "1s", "group_interval": "1s", "matchers": {"severity": "critical"}}
            made = await api.client.post("/api/alert-channels", json=channel, headers=admin)
            assert made.status_code == 201, made.text
            labels = {"alertname": "PostgresDown", "severity": "critical", "job": "postgres",
                      "instance": "127.0.0.1:9187"}
            annotations = {"summary": "PostgreSQL is down", "description": "pg_up == 0 for 1m"}
            starts = datetime.now(UTC) - timedelta(minutes=2)

            async with notifying(notifier), alertmanager(config, tmp_path / "am-data") as am_url, \
                    httpx.AsyncClient(base_url=am_url, timeout=10) as am:
                posted = await am.post("/api/v2/alerts", json=[
                    {"labels": labels, "annotations": annotations, "startsAt": starts.isoformat()}])
                assert posted.status_code == 200, posted.text
                fired = (await receiver.wait_for(1, timeout_s=60))[0].json
                assert fired["status"] == "firing", fired
                [alert] = fired["alerts"]
                assert {k: alert["labels"][k] for k in labels} == labels
                assert alert["annotations"]["summary"] == "PostgreSQL is down"

                ended = datetime.now(UTC)
                posted = await am.post("/api/v2/alerts", json=[
                    {"labels": labels, "annotations": annotations, "startsAt": starts.isoformat(),
                     "endsAt": ended.isoformat()}])
                assert posted.status_code == 200, posted.text
                resolved = (await receiver.wait_for(2, timeout_s=60))[1].json
                assert resolved["status"] == "resolved", resolved
                assert [a["fingerprint"] for a in resolved["alerts"]] == [alert["fingerprint"]]

            async def logged() -> list[dict[str, object]] | None:
                answer = await api.client.get("/api/notifications", params={"status": "sent"}, headers=admin)
                sent = answer.json()["notifications"] if answer.status_code == 200 else []
                return sent if len(sent) == 2 else None

            sent = await until(logged, what="both notifications in the delivery log")
            assert {n["channel_type"] for n in sent} == {"webhook"}  # type: ignore[index]
