"""The project's Prometheus and Alertmanager configurations rendered for one local stack (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chimera.devstack.monitoring import (
    ALERTMANAGER_CONFIG,
    PROMETHEUS_CONFIG,
    render_alertmanager_config,
    render_prometheus_config,
)

pytestmark = pytest.mark.unit


def _targets(config: dict) -> dict[str, list[str]]:  # type: ignore[type-arg]
    return {job["job_name"]: [t for s in job["static_configs"] for t in s["targets"]]
            for job in config["scrape_configs"]}


def test_every_default_port_moves_to_the_stacks_and_rule_files_are_absolute() -> None:
    source = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    ports = {8000: 18000, 9101: 19101, 9102: 19102, 9103: 19103, 9187: 19187, 9100: 19100, 9090: 19090,
             9093: 19095}
    rendered = render_prometheus_config(source, ports, PROMETHEUS_CONFIG.parent)
    targets = _targets(rendered)
    assert sorted(t for ts in targets.values() for t in ts) == sorted(
        f"127.0.0.1:{port}" for port in ports.values() if port != 19095)
    assert targets["chimera-aggregator"] == ["127.0.0.1:19101"]
    managers = [t for m in rendered["alerting"]["alertmanagers"] for s in m["static_configs"] for t in s["targets"]]
    assert managers == ["127.0.0.1:19095"]
    assert rendered["rule_files"] and all(Path(f).is_absolute() and Path(f).is_file() for f in rendered["rule_files"])
    assert _targets(source)["chimera-aggregator"] == ["127.0.0.1:9101"]  # the source is left alone


def test_a_port_nobody_moves_stays() -> None:
    rendered = render_prometheus_config({"scrape_configs": [{"job_name": "x", "static_configs": [
        {"targets": ["db.example:5555", "no-port"]}]}]}, {9090: 1}, Path("/rules"))
    assert _targets(rendered) == {"x": ["db.example:5555", "no-port"]}


def test_alertmanager_posts_to_this_stacks_notifier_input_with_its_key() -> None:
    rendered = render_alertmanager_config(yaml.safe_load(ALERTMANAGER_CONFIG.read_text()),
                                          "http://127.0.0.1:18000/api/alertmanager/webhook", Path("/state/key"))
    hooks = [hook for receiver in rendered["receivers"] for hook in receiver.get("webhook_configs", [])]
    assert hooks and all(hook["url"] == "http://127.0.0.1:18000/api/alertmanager/webhook" for hook in hooks)
    assert all(hook["http_config"]["authorization"] == {"type": "Bearer", "credentials_file": "/state/key"}
               for hook in hooks)
    assert all(hook["send_resolved"] for hook in hooks)
