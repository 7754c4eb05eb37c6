"""The alerts, alert, rules and channels pages in Chromium against the live system: the API's values
shown, a new alert appearing live, resolve and silence from an alert's page, a rule edited in place,
a channel tested, and a read key offered no write at all.

Alerts are raised from outside (POST /api/alerts, docs/contract.md), each test with its own name, so the
module's tests share one `console_stack` without seeing each other's alerts as their own."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

import httpx
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.conftest import unique_name
from tests.e2e.console.browser_support import console_errors, page_ready, screenshot, sign_in, wait_for
from tests.e2e.console.stack import ConsoleStack

pytestmark = pytest.mark.e2e

LIVE_WITHIN_S: Final = 10.0
SCRIPT_XSS: Final = "<script>alert(1)</script>"
ATTRIBUTE_XSS: Final = '"><img src=x onerror=alert(1)>'
DASH: Final = "\u2013"


def _write(stack: ConsoleStack, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """A JSON API write with the admin key (Bearer: no session, so no CSRF token)."""
    answer = httpx.request(method, f"{stack.base_url}{path}", json=body, timeout=10,
                           headers={"Authorization": f"Bearer {stack.keys.admin}"})
    assert answer.status_code in (200, 201), f"{method} {path}: {answer.status_code} {answer.text[:500]}"
    return answer.json()


def _raise_alert(stack: ConsoleStack, name: str, labels: dict[str, str], severity: str = "critical") -> Any:
    return _write(stack, "POST", "/api/alerts", {"name": name, "severity": severity, "labels": labels,
                                                 "description": f"{name} raised by the browser test"})


def _open(driver: WebDriver, stack: ConsoleStack, path: str) -> None:
    driver.get(f"{stack.base_url}{path}")
    wait_for(driver, page_ready, f"{path}'s first data")


# One read of a whole row, in the page: a live record redraws the list between two WebDriver calls.
_ROW_SCRIPT: Final = """
const row = document.querySelector(arguments[0]);
if (!row) return null;
const cells = {};
for (const node of row.querySelectorAll("[data-field]")) cells[node.dataset.field] = node.textContent.trim();
const link = row.querySelector("a");
cells.href = link ? link.href : null;
return cells;
"""


_PAIRS_SCRIPT: Final = """
return Array.from(document.querySelectorAll(arguments[0]),
                  (row) => Array.from(row.children, (cell) => cell.textContent.trim()));
"""


def _row(driver: WebDriver, section: str, alert_id: int) -> dict[str, str]:
    cells = driver.execute_script(_ROW_SCRIPT, f'[data-field="{section}-alerts"] tr[data-alert-id="{alert_id}"]')
    assert cells is not None, f"alert {alert_id} is not in {section}"
    return dict(cells)


def _cells(driver: WebDriver, selector: str) -> dict[str, str]:
    cells = driver.execute_script(_ROW_SCRIPT, selector)
    assert cells is not None, f"nothing at {selector}"
    return dict(cells)


def _labels_text(labels: dict[str, str]) -> str:
    return ", ".join(f"{name}={labels[name]}" for name in sorted(labels))


def _config_text(config: dict[str, Any]) -> str:
    """A channel's config as the page writes it (masked by the API, not by the page)."""
    def text(value: Any) -> str:
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value).lower() if isinstance(value, bool) else str(value)

    return " · ".join(f"{key}: {text(config[key])}" for key in sorted(config))


def _shown_in(section: str, alert_id: int) -> Callable[[WebDriver], WebElement | None]:
    def check(driver: WebDriver) -> WebElement | None:
        found = driver.find_elements(By.CSS_SELECTOR,
                                     f'[data-field="{section}-alerts"] tr[data-alert-id="{alert_id}"]')
        return found[0] if found else None

    return check


def _text_is(selector: str, expected: str) -> Callable[[WebDriver], bool]:
    def check(driver: WebDriver) -> bool:
        return driver.find_element(By.CSS_SELECTOR, selector).text.strip() == expected

    return check


def _firing_ids(driver: WebDriver) -> set[int]:
    ids = driver.execute_script("""return Array.from(
        document.querySelectorAll('[data-field="firing-alerts"] tr[data-alert-id]'), (row) => row.dataset.alertId);""")
    return {int(i) for i in ids}


def test_firing_alerts_show_the_apis_values_and_hostile_names_as_text(console_stack: ConsoleStack,
                                                                      browser: WebDriver) -> None:
    labels = {"pool": "main", "worker": "rig-" + unique_name("w")}
    alert = _raise_alert(console_stack, "PoolHashrateLow", labels)
    hostile = _raise_alert(console_stack, f"rule {SCRIPT_XSS}", {"worker": ATTRIBUTE_XSS}, severity="warning")
    sign_in(browser, console_stack.base_url, console_stack.keys.read)
    _open(browser, console_stack, "/alerts")

    row = _row(browser, "firing", alert["id"])
    assert row["alert-name"] == alert["name"]
    assert row["alert-severity"] == alert["severity"] == "critical"
    assert row["alert-labels"] == _labels_text(alert["labels"])
    assert row["alert-value"] == DASH and alert["value"] is None
    assert row["href"] == f"{console_stack.base_url}/alerts/{alert['id']}"
    # The page lists what the API lists (an alert the alerter raises meanwhile is allowed a retry).
    deadline = time.monotonic() + 20
    while True:
        listed = {a["id"] for a in console_stack.api("/api/alerts?status=firing&limit=500",
                                                     console_stack.keys.read)["alerts"]}
        if _firing_ids(browser) == listed:
            break
        assert time.monotonic() < deadline, f"page {_firing_ids(browser)} != API {listed}"
        time.sleep(0.5)
    # Names from outside are text on the page, never markup.
    evil = _row(browser, "firing", hostile["id"])
    assert evil["alert-name"] == f"rule {SCRIPT_XSS}"
    assert evil["alert-labels"] == _labels_text(hostile["labels"]) and ATTRIBUTE_XSS in evil["alert-labels"]
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main script:not(#page-data)") == []
    screenshot(browser, "alerts-page")

    # The filters are the URL's: a label filter keeps the one alert, a severity filter drops it.
    _open(browser, console_stack, f"/alerts?status=firing&label={labels['worker']}")
    assert _firing_ids(browser) == {alert["id"]}
    _open(browser, console_stack, f"/alerts?status=firing&severity=info&label={labels['worker']}")
    assert _firing_ids(browser) == set()
    assert browser.find_elements(By.CSS_SELECTOR, '[data-section="resolved"]') == []
    screenshot(browser, "alerts-page-filtered")
    assert console_errors(browser) == []


def test_a_new_alert_appears_and_a_resolved_one_moves_without_a_reload(console_stack: ConsoleStack,
                                                                        browser: WebDriver) -> None:
    sign_in(browser, console_stack.base_url, console_stack.keys.read)
    _open(browser, console_stack, "/alerts")
    wait_for(browser, _text_is('[data-field="live-status"]', "live"), "the live stream")
    browser.execute_script("window.__chimeraTestMark = 'same document'")

    alert = _raise_alert(console_stack, "WorkerOffline", {"worker": "rig-" + unique_name("w")})
    wait_for(browser, _shown_in("firing", alert["id"]), "the new alert in Firing", timeout_s=LIVE_WITHIN_S)
    assert _row(browser, "firing", alert["id"])["alert-name"] == "WorkerOffline"
    screenshot(browser, "alerts-page-live")

    _write(console_stack, "PUT", f"/api/alerts/{alert['id']}/resolve")
    wait_for(browser, _shown_in("resolved", alert["id"]), "the alert in Resolved", timeout_s=LIVE_WITHIN_S)
    assert alert["id"] not in _firing_ids(browser)
    assert browser.execute_script("return window.__chimeraTestMark") == "same document", "the page reloaded"
    screenshot(browser, "alerts-page-live-resolved")
    assert console_errors(browser) == []


def test_an_alert_is_resolved_by_hand_from_its_page(console_stack: ConsoleStack, browser: WebDriver) -> None:
    alert = _raise_alert(console_stack, "ShareRejectsHigh", {"miner": "m1", "worker": "rig-" + unique_name("w")})
    sign_in(browser, console_stack.base_url, console_stack.keys.admin)
    _open(browser, console_stack, f"/alerts/{alert['id']}")
    assert browser.find_element(By.CSS_SELECTOR, '[data-field="alert-status"]').text == "firing"
    assert browser.find_element(By.CSS_SELECTOR, '[data-field="alert-name"]').text == "ShareRejectsHigh"
    # One read in the page: the alert's own live record redraws the table between two WebDriver calls.
    labels = browser.execute_script(_PAIRS_SCRIPT, '[data-field="alert-labels"] tr')
    assert labels == [[k, v] for k, v in sorted(alert["labels"].items())]
    screenshot(browser, "alert-page-firing")

    browser.find_element(By.CSS_SELECTOR, '[data-field="resolve"]').click()
    wait_for(browser, _text_is('[data-field="alert-status"]', "resolved"), "the alert resolved")

    stored = console_stack.api(f"/api/alerts/{alert['id']}", console_stack.keys.read)
    assert stored["status"] == "resolved" and stored["end_reason"] == "resolved by hand"
    assert browser.find_element(By.CSS_SELECTOR, '[data-field="alert-end-reason"]').text == "resolved by hand"
    assert not browser.find_element(By.CSS_SELECTOR, '[data-field="resolve"]').is_displayed()
    screenshot(browser, "alert-page-resolved")
    assert console_errors(browser) == []


def test_a_silence_made_from_an_alert_has_its_labels_as_matchers(console_stack: ConsoleStack,
                                                                 browser: WebDriver) -> None:
    labels = {"alertname": "MinerHashrateDrop", "miner": "m1", "worker": "rig-" + unique_name("w")}
    alert = _raise_alert(console_stack, "MinerHashrateDrop", labels)
    sign_in(browser, console_stack.base_url, console_stack.keys.admin)
    _open(browser, console_stack, f"/alerts/{alert['id']}")

    rows = browser.find_elements(By.CSS_SELECTOR, '[data-field="matcher"]')
    prefilled = [(r.find_element(By.CSS_SELECTOR, '[data-part="name"]').get_attribute("value"),
                  r.find_element(By.CSS_SELECTOR, '[data-part="op"]').get_attribute("value"),
                  r.find_element(By.CSS_SELECTOR, '[data-part="value"]').get_attribute("value")) for r in rows]
    assert prefilled == [(k, "=", v) for k, v in sorted(alert["labels"].items())]
    # A bad duration is the API's 422, shown next to the field; nothing is created.
    duration = browser.find_element(By.CSS_SELECTOR, '[data-field="silence-duration"]')
    duration.clear()
    duration.send_keys("forever")
    browser.find_element(By.CSS_SELECTOR, '[data-field="silence-submit"]').click()
    error = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, '[data-error-for="duration"]').text.strip(),
                     "the duration's error")
    assert error
    duration.clear()
    duration.send_keys("90m")
    browser.find_element(By.CSS_SELECTOR, '[data-field="silence-comment"]').send_keys("rig moved to new PSU")
    browser.find_element(By.CSS_SELECTOR, '[data-field="silence-submit"]').click()
    created = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, '[data-field="silence-created"]')
                       .is_displayed(), "the silence shown")
    assert created
    silence_id = browser.find_element(By.CSS_SELECTOR, '[data-field="silence-id"]').text.strip()

    silences = console_stack.api("/api/silences", console_stack.keys.read)["silences"]
    silence = next(s for s in silences if s["id"] == silence_id)
    assert silence["matchers"] == [{"name": k, "op": "=", "value": v} for k, v in sorted(alert["labels"].items())]
    assert silence["comment"] == "rig moved to new PSU" and silence["state"] == "active"
    assert browser.find_element(By.CSS_SELECTOR, '[data-field="silence-state"]').text == "active"
    screenshot(browser, "alert-page-silenced")
    # The refused attempt answered 422: the browser logs that response, and nothing else went wrong.
    assert [e for e in console_errors(browser) if "/api/silences" not in e["message"]] == []


def test_a_rule_edited_in_the_page_is_changed_in_the_api(console_stack: ConsoleStack, browser: WebDriver) -> None:
    rule = _write(console_stack, "POST", "/api/alert-rules", {
        "name": unique_name("slow-workers"), "metric": "worker_hashrate", "operator": "<", "threshold": 1.0,
        "window": "1h", "duration": "5m", "severity": "warning", "group_by": ["miner", "worker"]})
    sign_in(browser, console_stack.base_url, console_stack.keys.admin)
    _open(browser, console_stack, "/rules")
    row = _cells(browser, f"#rule-{rule['id']}")
    assert row["rule-name"] == rule["name"] and row["rule-window"] == "1h"
    assert float(row["rule-threshold"]) == rule["threshold"]

    browser.find_element(By.ID, f"rule-{rule['id']}").find_element(By.CSS_SELECTOR, '[data-field="rule-edit"]').click()
    form = browser.find_element(By.CSS_SELECTOR, f'#rule-editor-{rule["id"]} form')
    duration = form.find_element(By.NAME, "duration")
    duration.clear()
    duration.send_keys("soon")
    form.find_element(By.CSS_SELECTOR, '[data-field="rule-save"]').click()
    wait_for(browser, lambda d: form.find_element(By.CSS_SELECTOR, '[data-error-for="duration"]').text.strip(),
             "the API's error next to the duration")
    screenshot(browser, "rules-page-refused")
    duration.clear()
    duration.send_keys("10m")
    threshold = form.find_element(By.NAME, "threshold")
    threshold.clear()
    threshold.send_keys("2.5")
    form.find_element(By.CSS_SELECTOR, '[data-field="rule-save"]').click()
    wait_for(browser, _text_is(f'#rule-{rule["id"]} [data-field="rule-threshold"]', "2.5"), "the saved threshold")

    stored = console_stack.api(f"/api/alert-rules/{rule['id']}", console_stack.keys.read)
    assert stored["threshold"] == 2.5 and stored["duration"] == "10m" and stored["enabled"] is True
    assert _cells(browser, f"#rule-{rule['id']}")["rule-duration"] == "10m"
    browser.find_element(By.CSS_SELECTOR, f'#rule-{rule["id"]} [data-field="rule-toggle"]').click()
    wait_for(browser, _text_is(f'#rule-{rule["id"]} [data-field="rule-enabled"]', "no"), "the rule disabled")
    assert console_stack.api(f"/api/alert-rules/{rule['id']}", console_stack.keys.read)["enabled"] is False
    screenshot(browser, "rules-page")
    assert [e for e in console_errors(browser) if "/api/alert-rules/" not in e["message"]] == []


def test_a_channel_is_shown_redacted_and_its_test_outcome_shown(console_stack: ConsoleStack,
                                                                browser: WebDriver) -> None:
    # Nothing listens on the discard port: the test delivery fails, and the page says how.
    channel = _write(console_stack, "POST", "/api/alert-channels", {
        "name": unique_name("ops-hook"), "type": "webhook", "config": {"url": "http://127.0.0.1:9/hook?token=s3cret"},
        "min_severity": "critical", "matchers": {"alertname": "NeverRaised"}})
    sign_in(browser, console_stack.base_url, console_stack.keys.admin)
    _open(browser, console_stack, "/channels")
    row = _cells(browser, f"#channel-{channel['id']}")
    shown = row["channel-destination"]
    assert shown == _config_text(channel["config"]) and "s3cret" not in shown
    assert f"url: {channel['config']['url']}" in shown
    assert row["channel-min-severity"] == "critical" and row["channel-enabled"] == "yes"

    browser.find_element(By.ID, f"channel-{channel['id']}").find_element(By.CSS_SELECTOR, '[data-field="channel-test"]').click()
    outcome = wait_for(browser, lambda d: (lambda t: t if t.startswith(("sent", "failed")) else None)(
        d.find_element(By.CSS_SELECTOR, f'#channel-{channel["id"]} [data-field="channel-test-result"]').text.strip()),
        "the test's outcome")
    assert outcome.startswith("failed")
    screenshot(browser, "channels-page-tested")

    browser.find_element(By.CSS_SELECTOR, f'#channel-{channel["id"]} [data-field="channel-edit"]').click()
    form = browser.find_element(By.CSS_SELECTOR, f'#channel-editor-{channel["id"]} form')
    form.find_element(By.NAME, "enabled").click()
    form.find_element(By.CSS_SELECTOR, '[data-field="channel-save"]').click()
    wait_for(browser, _text_is(f'#channel-{channel["id"]} [data-field="channel-enabled"]', "no"), "the saved channel")
    stored = console_stack.api(f"/api/alert-channels/{channel['id']}", console_stack.keys.read)
    # The masked URL went back unchanged: the stored secret is kept, not replaced by the mask.
    assert stored["enabled"] is False and stored["config"] == channel["config"] and stored["secrets_readable"]
    screenshot(browser, "channels-page")
    assert console_errors(browser) == []


def test_a_read_key_is_offered_no_write(console_stack: ConsoleStack, browser: WebDriver) -> None:
    alert = _raise_alert(console_stack, "BlockOrphaned", {"worker": "rig-" + unique_name("w")})
    _write(console_stack, "POST", "/api/alert-rules", {
        "name": f"{SCRIPT_XSS} {unique_name('r')}", "metric": "worker_hashrate", "operator": "<",
        "threshold": 1.0, "window": "1h"})
    sign_in(browser, console_stack.base_url, console_stack.keys.read)

    _open(browser, console_stack, f"/alerts/{alert['id']}")
    assert browser.find_element(By.CSS_SELECTOR, '[data-field="alert-status"]').text == "firing"
    for hook in ("resolve", "silence-form", "matcher"):
        assert browser.find_elements(By.CSS_SELECTOR, f'[data-field="{hook}"]') == [], hook
    screenshot(browser, "alert-page-read-only")
    _open(browser, console_stack, "/rules")
    assert browser.find_elements(By.CSS_SELECTOR, '[data-field="rule-edit"], [data-field="rule-toggle"]') == []
    names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, '[data-field="rule-name"]')]
    assert any(name.startswith(SCRIPT_XSS) for name in names), names
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main script:not(#page-data)") == []
    screenshot(browser, "rules-page-read-only")
    _open(browser, console_stack, "/channels")
    assert browser.find_elements(By.CSS_SELECTOR, '[data-field="channel-test"], [data-field="channel-edit"]') == []
    screenshot(browser, "channels-page-read-only")
    assert console_errors(browser) == []
