"""The pool page in Chromium against the live system: sign-in, figures equal to the API's, live updates,
reconnection after the ingest service restarts, and a miner key kept to its own miner.

The module shares one `console_stack`; the restart test runs last (tests run in file order)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from tests.e2e.console import figures
from tests.e2e.console.browser_support import (
    console_errors,
    field_text,
    page_ready,
    screenshot,
    sign_in,
    wait_for,
)
from tests.e2e.console.stack import MINER, OTHER_MINER, ConsoleStack

pytestmark = pytest.mark.e2e

SESSION_COOKIE: Final = "chimera_session"
# Figures on the pool page and how each is read back: data-field -> (API field, parser).
COMPARED: Final[dict[str, tuple[Callable[[dict[str, Any]], float | None], Callable[[str], figures.Shown]]]] = {
    "hashrate-1h": (lambda stats: stats["hashrate"]["1h"], figures.hashrate),
    "active-workers": (lambda stats: stats["active_workers"], figures.count),
    "active-miners": (lambda stats: stats["active_miners"], figures.count),
    "efficiency": (lambda stats: stats["efficiency"], figures.percent),
}
# The figure that moves with every snapshot (about once a second), for the live tests: the current
# round's effort grows with every accepted share (the windowed figures move once a minute).
LIVE_FIELD: Final = "round-effort"
LIVE_WITHIN_S: Final = 10.0
RECONNECT_WITHIN_S: Final = 45.0


def _path(driver: WebDriver) -> str:
    return str(driver.execute_script("return location.pathname"))


def _status(driver: WebDriver) -> int:
    """The HTTP status of the document shown (Navigation Timing's responseStatus)."""
    return int(driver.execute_script("return performance.getEntriesByType('navigation')[0].responseStatus"))


def _signed_in_pool_page(driver: WebDriver, stack: ConsoleStack) -> None:
    sign_in(driver, stack.base_url, stack.keys.read)
    assert _path(driver) == "/"
    wait_for(driver, page_ready, "the pool page's first data")


def _mark_document(driver: WebDriver) -> None:
    # A property of this document's window: a reload would make a new window object without it.
    driver.execute_script("window.__chimeraTestMark = 'same document'")


def _same_document(driver: WebDriver) -> bool:
    return bool(driver.execute_script("return window.__chimeraTestMark") == "same document")


def _live_value(driver: WebDriver) -> str:
    return field_text(driver, LIVE_FIELD)


def _changes(driver: WebDriver, before: str) -> Callable[[WebDriver], str | None]:
    def check(_: WebDriver) -> str | None:
        now = _live_value(driver)
        return now if now != before else None

    return check


def test_a_wrong_key_is_refused_on_the_form(console_stack: ConsoleStack, browser: WebDriver) -> None:
    sign_in(browser, console_stack.base_url, "chk_" + "x" * 43)

    assert _path(browser) == "/sign-in"
    assert _status(browser) == 401
    error = browser.find_element(By.CSS_SELECTOR, "[role=alert]")
    assert error.is_displayed() and error.text.strip()
    assert browser.get_cookie(SESSION_COOKIE) is None
    screenshot(browser, "sign-in-refused")
    # The refusal itself is the document's status, not a script's error.
    assert [e for e in console_errors(browser) if "/sign-in" not in e["message"]] == []


def test_the_read_key_lands_on_the_pool_page(console_stack: ConsoleStack, browser: WebDriver) -> None:
    _signed_in_pool_page(browser, console_stack)

    cookie = browser.get_cookie(SESSION_COOKIE)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie").find(SESSION_COOKIE) == -1
    assert browser.find_element(By.TAG_NAME, "h1").text.strip()
    screenshot(browser, "pool-page")
    assert console_errors(browser) == []


def _compared(stats: dict[str, Any]) -> dict[str, float | None]:
    return {name: api_field(stats) for name, (api_field, _) in COMPARED.items()}


def _mismatches(driver: WebDriver, stats: dict[str, Any]) -> dict[str, tuple[str, float | None]]:
    wrong: dict[str, tuple[str, float | None]] = {}
    for name, (api_field, parse) in COMPARED.items():
        shown, exact = field_text(driver, name), api_field(stats)
        if exact is None or not parse(shown).matches(float(exact)):
            wrong[name] = (shown, exact)
    return wrong


def test_the_pool_page_shows_what_the_api_answers(console_stack: ConsoleStack, browser: WebDriver) -> None:
    _signed_in_pool_page(browser, console_stack)

    # The page and the API read the same minute's figures, but a minute can turn between the two
    # reads: compare only when the API answered the same before and after reading the page.
    deadline = time.monotonic() + 30
    last: dict[str, tuple[str, float | None]] = {}
    while True:
        before = console_stack.api("/api/pool/stats?pool=main", console_stack.keys.read)
        wrong = _mismatches(browser, before)
        after = console_stack.api("/api/pool/stats?pool=main", console_stack.keys.read)
        steady = _compared(before) == _compared(after)
        if steady and not wrong:
            break
        last = wrong if steady else last
        assert time.monotonic() < deadline, f"page figures differ from GET /api/pool/stats: {last}"
        time.sleep(0.5)
    assert before["active_workers"] > 0 and before["hashrate"]["1h"] > 0
    screenshot(browser, "pool-page-figures")
    assert console_errors(browser) == []


def test_the_charts_draw_the_pool_history(console_stack: ConsoleStack, browser: WebDriver) -> None:
    # The day chart reads the hour roll-ups: wait until the API has one (the backfill's first hour).
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86_400))
    deadline = time.monotonic() + 60
    while not console_stack.api(f"/api/pool/history?pool=main&step=1h&from={since}", console_stack.keys.read):
        assert time.monotonic() < deadline, "no hour row in GET /api/pool/history"
        time.sleep(1)
    minutes = console_stack.api("/api/pool/history?pool=main", console_stack.keys.read)
    assert len(minutes) >= 30 and all(r["hashrate_lower"] <= r["hashrate"] <= r["hashrate_upper"] for r in minutes)
    _signed_in_pool_page(browser, console_stack)
    for chart in ("hour", "day"):
        wait_for(browser, lambda d, c=chart: field_text(d, f"chart-{c}-status") == "" and d.find_elements(
            By.CSS_SELECTOR, f"#chart-{c} canvas"), f"the {chart} chart drawn with data")
    screenshot(browser, "pool-page-charts")
    assert console_errors(browser) == []


def test_a_live_figure_moves_without_a_reload(console_stack: ConsoleStack, browser: WebDriver) -> None:
    _signed_in_pool_page(browser, console_stack)
    _mark_document(browser)
    before = _live_value(browser)

    after = wait_for(browser, _changes(browser, before), f"{LIVE_FIELD} to change", timeout_s=LIVE_WITHIN_S)

    assert _same_document(browser), "the page reloaded instead of updating in place"
    assert after != before
    screenshot(browser, "pool-page-live")
    assert console_errors(browser) == []


def test_a_miner_key_sees_its_own_miner_only(console_stack: ConsoleStack, browser: WebDriver) -> None:
    sign_in(browser, console_stack.base_url, console_stack.keys.miner)

    assert _path(browser) == f"/miners/{MINER}"
    assert _status(browser) == 200, f"/miners/{MINER} answered {_status(browser)}"
    wait_for(browser, page_ready, "the miner page's first data")
    screenshot(browser, "miner-page-own")
    assert console_errors(browser) == []

    browser.get(f"{console_stack.base_url}/miners/{OTHER_MINER}")
    assert _status(browser) == 403
    assert field_text(browser, "error-message")
    assert browser.find_elements(By.CSS_SELECTOR, '[data-field^="hashrate"]') == [], "another miner's figures shown"
    screenshot(browser, "miner-page-other-refused")
    # The home page sends a miner's key to its own miner, never to the pool's figures.
    browser.get(f"{console_stack.base_url}/")
    assert _path(browser) == f"/miners/{MINER}"


def test_the_page_reconnects_after_the_service_restarts(console_stack: ConsoleStack, browser: WebDriver) -> None:
    _signed_in_pool_page(browser, console_stack)
    _mark_document(browser)
    assert console_errors(browser) == []

    console_stack.restart_ingest()
    # Any change from here on came over a new stream: the old one ended with the old process.
    restarted = _live_value(browser)
    wait_for(browser, _changes(browser, restarted), f"{LIVE_FIELD} to change after the restart",
             timeout_s=RECONNECT_WITHIN_S)

    assert _same_document(browser), "the page reloaded instead of reconnecting"
    screenshot(browser, "pool-page-reconnected")
    # While the service was down the stream's reconnection attempts failed; nothing else may have.
    assert [e for e in console_errors(browser) if "/live" not in e["message"]] == []


def test_windows_before_the_pools_first_data_say_filling(console_stack: ConsoleStack, browser: WebDriver) -> None:
    # The stack's pool began an hour ago (its backfill): its 24h window reads low and says so.
    stats = console_stack.api("/api/pool/stats?pool=main", console_stack.keys.read)
    assert stats["filling"]["24h"] is True and stats["filling"]["5m"] is False, stats["filling"]
    _signed_in_pool_page(browser, console_stack)

    def badges(driver: WebDriver) -> dict[str, bool]:
        return {w: driver.find_element(By.CSS_SELECTOR, f'[data-field="filling-{w}"]').is_displayed()
                for w in ("5m", "24h")}

    wait_for(browser, lambda d: badges(d) == {"5m": False, "24h": True}, "the 24h window's filling badge")
    # A live record carries no `filling`: the page judges it from the first data the API gave.
    _mark_document(browser)
    before = _live_value(browser)
    wait_for(browser, _changes(browser, before), f"{LIVE_FIELD} to change", timeout_s=LIVE_WITHIN_S)
    assert _same_document(browser) and badges(browser) == {"5m": False, "24h": True}
    screenshot(browser, "pool-page-filling")
    assert console_errors(browser) == []
