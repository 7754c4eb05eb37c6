"""Dashboards in Chromium against the live system: a public dashboard opens in a fresh browser without
signing in and draws its panels (a stat equal to the API's figure), a private one is the 404 page for
another key and renders for its owner, hostile titles stay text, and the range buttons change a chart.

The range test runs last (tests run in file order): it waits for the aggregator's first hourly roll-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from tests.e2e.console import figures
from tests.e2e.console.browser_support import console_errors, field_text, page_ready, screenshot, sign_in, wait_for
from tests.e2e.console.stack import ConsoleStack

pytestmark = pytest.mark.e2e

XSS_TITLE: Final = "<script>alert(1)</script>"
XSS_PANEL: Final = '"><img src=x onerror=alert(1)>'
PANELS: Final = [
    {"id": "rate", "title": "Pool hashrate, 1h", "type": "stat", "unit": "hashrate", "width": 4,
     "query": {"endpoint": "/api/pool/stats", "params": {"pool": "main"}, "field": "hashrate.1h"}},
    {"id": "history", "title": "Pool hashrate", "type": "timeseries", "unit": "hashrate", "width": 8,
     "query": {"endpoint": "/api/pool/history", "params": {"pool": "main"}, "field": "hashrate"}},
    {"id": "workers", "title": "Workers of m1", "type": "table", "width": 12,
     "query": {"endpoint": "/api/miners/{miner}/stats", "params": {"miner": "m1", "pool": "main"},
               "field": "workers", "columns": ["worker", "hashrate.1h", "accepted"]}},
]


def create_dashboard(stack: ConsoleStack, name: str, *, public: bool, panels: list[dict[str, Any]]) -> str:
    """A dashboard owned by the admin key, made through the API as a person's script would."""
    answer = httpx.post(f"{stack.base_url}/api/dashboards", timeout=10,
                        headers={"Authorization": f"Bearer {stack.keys.admin}"},
                        json={"name": name, "is_public": public, "config": {"panels": panels}})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _status(driver: WebDriver) -> int:
    return int(driver.execute_script("return performance.getEntriesByType('navigation')[0].responseStatus"))


def _day_by_hour(stack: ConsoleStack) -> list[dict[str, Any]] | None:
    since = (datetime.now(UTC) - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows: list[dict[str, Any]] = stack.api(f"/api/pool/history?pool=main&step=1h&from={since}", stack.keys.read)
    return rows or None


def _open(driver: WebDriver, url: str) -> None:
    driver.get(url)
    wait_for(driver, page_ready, "the dashboard's first data")


def test_a_public_dashboard_opens_without_signing_in(console_stack: ConsoleStack, browser: WebDriver) -> None:
    board = create_dashboard(console_stack, "Pool wall", public=True, panels=PANELS)
    _open(browser, f"{console_stack.base_url}/dashboards/{board}")
    assert _status(browser) == 200 and browser.current_url.endswith(f"/dashboards/{board}")
    assert field_text(browser, "dashboard-name") == "Pool wall"
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-field="viewer-name"]')  # nobody signed in
    # The stat equals the API's figure (which moves once a minute: one of the answers around the read).
    before = console_stack.api("/api/pool/stats?pool=main", console_stack.keys.read)["hashrate"]["1h"]
    shown = figures.hashrate(field_text(browser, "panel-value-rate"))
    after = console_stack.api("/api/pool/stats?pool=main", console_stack.keys.read)["hashrate"]["1h"]
    assert before > 0 and (shown.matches(before) or shown.matches(after)), (shown, before, after)
    chart = browser.find_element(By.ID, "chart-history")
    assert int(chart.get_attribute("data-points") or 0) > 10
    assert chart.find_elements(By.TAG_NAME, "canvas")  # uPlot drew it
    rows = browser.find_elements(By.CSS_SELECTOR, '[data-field="panel-rows-workers"] tr')
    workers = console_stack.api("/api/miners/m1/stats?pool=main", console_stack.keys.read)["workers"]
    assert len(rows) == len(workers) > 0
    screenshot(browser, "dashboard-public")
    assert console_errors(browser) == []


def test_a_private_dashboard_is_the_owners_alone(console_stack: ConsoleStack, browser: WebDriver) -> None:
    board = create_dashboard(console_stack, "Owner's eyes only", public=False, panels=PANELS[:1])
    url = f"{console_stack.base_url}/dashboards/{board}"
    sign_in(browser, console_stack.base_url, console_stack.keys.read)
    browser.get(url)
    assert _status(browser) == 404
    assert "Owner's eyes only" not in browser.page_source
    screenshot(browser, "dashboard-private-other-key")
    # The browser logs the 404 itself; that one is expected, and drained here.
    assert all("404" in entry["message"] and board in entry["message"] for entry in console_errors(browser))
    browser.delete_all_cookies()
    sign_in(browser, console_stack.base_url, console_stack.keys.admin)
    _open(browser, url)
    assert _status(browser) == 200 and field_text(browser, "dashboard-name") == "Owner's eyes only"
    assert field_text(browser, "dashboard-visibility") == "private"
    assert figures.hashrate(field_text(browser, "panel-value-rate")).value > 0
    # The list shows it to its owner, with a link.
    _open(browser, f"{console_stack.base_url}/dashboards")
    links = browser.find_elements(By.CSS_SELECTOR, f'[data-dashboard="{board}"] a')
    assert [a.text for a in links] == ["Owner's eyes only"]
    screenshot(browser, "dashboards-list")
    assert console_errors(browser) == []


def test_hostile_titles_are_shown_as_text(console_stack: ConsoleStack, browser: WebDriver) -> None:
    panels = [{**PANELS[0], "title": XSS_PANEL}, {**PANELS[1], "title": f"chart {XSS_TITLE}"}]
    board = create_dashboard(console_stack, XSS_TITLE, public=True, panels=panels)
    _open(browser, f"{console_stack.base_url}/dashboards/{board}")
    assert field_text(browser, "dashboard-name") == XSS_TITLE
    assert field_text(browser, "panel-title-rate") == XSS_PANEL
    assert field_text(browser, "panel-title-history") == f"chart {XSS_TITLE}"
    assert browser.title.startswith(XSS_TITLE)
    assert not browser.find_elements(By.CSS_SELECTOR, "main img, main script:not(#page-data)")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (reading it is the check: no script ran)
    screenshot(browser, "dashboard-hostile-titles")
    assert console_errors(browser) == []


def test_the_range_buttons_change_the_chart(console_stack: ConsoleStack, browser: WebDriver) -> None:
    board = create_dashboard(console_stack, "Ranges", public=True, panels=PANELS[1:2])
    _open(browser, f"{console_stack.base_url}/dashboards/{board}")
    chart = browser.find_element(By.ID, "chart-history")
    minutes = int(chart.get_attribute("data-points") or 0)
    first = chart.get_attribute("data-first")
    assert minutes > 10  # the last hour, by minute
    # The aggregator rolls minutes up into hours once a minute: wait for the hour rows the API will give.
    hour_rows = wait_for(browser, lambda _: _day_by_hour(console_stack), "the pool's hourly roll-up", 90.0)
    browser.find_element(By.CSS_SELECTOR, '.range-picker button[data-range="24h"]').click()
    wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-range") == "24h"
             and page_ready(d), "the 24h data")
    chart = browser.find_element(By.ID, "chart-history")
    hours = int(chart.get_attribute("data-points") or 0)
    assert 0 < hours < minutes and chart.get_attribute("data-first") != first  # the last day, by hour
    assert hours in (len(hour_rows), len(hour_rows) + 1)  # an hour may have closed in between
    assert browser.execute_script("return location.search") == "?range=24h"  # a shareable URL
    pressed = browser.find_element(By.CSS_SELECTOR, '.range-picker button[aria-pressed="true"]')
    assert pressed.get_attribute("data-range") == "24h"
    screenshot(browser, "dashboard-range-24h")
    assert console_errors(browser) == []
