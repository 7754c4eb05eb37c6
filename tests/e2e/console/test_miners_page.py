"""The Miners pages in Chromium against the live system: the list in the API's order, sorting by a
header, searching, paging through the URL, a row opening its miner; the miner page's worker figures
equal to the API's, a worker figure moving live, and a miner key kept to its own miner.

Figures move while a page is open (the simulator runs), so a comparison with the API is made when
the API answered the same before and after the page was read, as the pool page's tests do."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

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

STEADY_WITHIN_S: Final = 30.0
LIVE_WITHIN_S: Final = 15.0
PAGE_SIZE: Final = 5
T = TypeVar("T")


def _path(driver: WebDriver) -> str:
    return str(driver.execute_script("return location.pathname"))


def _query(driver: WebDriver) -> dict[str, list[str]]:
    return parse_qs(urlsplit(driver.current_url).query)


def _status(driver: WebDriver) -> int:
    return int(driver.execute_script("return performance.getEntriesByType('navigation')[0].responseStatus"))


def _open(driver: WebDriver, stack: ConsoleStack, path: str) -> None:
    driver.get(f"{stack.base_url}{path}")
    wait_for(driver, page_ready, f"the first data of {path}")


def _signed_in(driver: WebDriver, stack: ConsoleStack, path: str, key: str | None = None) -> None:
    sign_in(driver, stack.base_url, key or stack.keys.read)
    _open(driver, stack, path)


def _listed(driver: WebDriver) -> list[str]:
    return [a.text for a in driver.find_elements(By.CSS_SELECTOR, 'tbody[data-field="miners"] [data-field="miner-name"]')]


def _api_names(stack: ConsoleStack, **params: str | int) -> list[str]:
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in {"pool": "main", **params}.items())
    return [row["miner"] for row in stack.api(f"/api/miners?{query}", stack.keys.read)["miners"]]


def _steady(read_api: Callable[[], T], read_page: Callable[[], Any], agree: Callable[[T, Any], bool],
            what: str) -> T:
    """The API's answer once the page agrees with it while the API answered the same twice."""
    deadline = time.monotonic() + STEADY_WITHIN_S
    while True:
        before = read_api()
        shown = read_page()
        after = read_api()
        if before == after and agree(before, shown):
            return before
        assert time.monotonic() < deadline, f"{what}: page {shown!r}, API {before!r} then {after!r}"
        time.sleep(0.5)


def _header(driver: WebDriver, sort: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'.miners-table th[data-sort="{sort}"]')


def _rows_become(driver: WebDriver, expected: list[str], what: str) -> None:
    wait_for(driver, lambda d: _listed(d) == expected or None, what, timeout_s=10)


def test_the_list_is_the_apis_top_by_hashrate(console_stack: ConsoleStack, browser: WebDriver) -> None:
    _signed_in(browser, console_stack, "/miners")

    def read_page() -> list[str]:
        browser.refresh()
        wait_for(browser, page_ready, "the miners list")
        return _listed(browser)

    names = _steady(lambda: _api_names(console_stack, sort="hashrate_1h", order="desc"), read_page,
                    lambda api, page: api == page, "the list's order")
    assert len(names) >= 2 and MINER in names
    assert _header(browser, "hashrate_1h").get_attribute("aria-sort") == "descending"
    # Each row's figures are the API's, as shown with their rounding.
    rows = console_stack.api("/api/miners?pool=main", console_stack.keys.read)["miners"]
    first = browser.find_element(By.CSS_SELECTOR, 'tbody[data-field="miners"] tr')
    assert first.get_attribute("data-miner") == rows[0]["miner"]
    shown = first.find_element(By.CSS_SELECTOR, '[data-field="hashrate-1h"]').text
    assert figures.hashrate(shown).matches(rows[0]["hashrate"]["1h"]), (shown, rows[0]["hashrate"]["1h"])
    workers = first.find_element(By.CSS_SELECTOR, '[data-field="workers"]').text
    assert workers == f"{rows[0]['workers_online']} / {rows[0]['workers_total']}"
    assert field_text(browser, "page-range") == f"1\u2013{len(names)} of {len(names)}"
    screenshot(browser, "miners-list")
    assert console_errors(browser) == []


def test_a_header_sorts_the_list_and_the_url_keeps_it(console_stack: ConsoleStack, browser: WebDriver) -> None:
    _signed_in(browser, console_stack, "/miners")

    _header(browser, "miner").find_element(By.TAG_NAME, "button").click()
    _rows_become(browser, _api_names(console_stack, sort="miner", order="asc"), "the list by name, A to Z")
    assert _header(browser, "miner").get_attribute("aria-sort") == "ascending"
    assert _header(browser, "hashrate_1h").get_attribute("aria-sort") == "none"
    assert _query(browser) == {"sort": ["miner"], "order": ["asc"]}

    browser.refresh()  # the view survives a reload
    wait_for(browser, page_ready, "the reloaded list")
    assert _listed(browser) == _api_names(console_stack, sort="miner", order="asc")
    assert _header(browser, "miner").get_attribute("aria-sort") == "ascending"

    _header(browser, "miner").find_element(By.TAG_NAME, "button").click()  # again: the other way
    _rows_become(browser, _api_names(console_stack, sort="miner", order="desc"), "the list by name, Z to A")
    assert _header(browser, "miner").get_attribute("aria-sort") == "descending"
    screenshot(browser, "miners-list-by-name")
    assert console_errors(browser) == []


def test_search_narrows_the_list(console_stack: ConsoleStack, browser: WebDriver) -> None:
    _signed_in(browser, console_stack, "/miners?sort=miner&order=asc")
    everyone = _listed(browser)
    needle = MINER  # "m1" is also part of "m10", "m11", ...: a search, not a lookup
    expected = _api_names(console_stack, sort="miner", order="asc", q=needle)
    assert 0 < len(expected) < len(everyone)

    search = browser.find_element(By.CSS_SELECTOR, '[data-field="search"]')
    search.send_keys(needle)  # no Enter: the box searches by itself once typing pauses
    _rows_become(browser, expected, f"the miners matching {needle!r}")
    assert all(needle in name for name in _listed(browser))
    assert _query(browser)["q"] == [needle]
    assert field_text(browser, "page-range") == f"1\u2013{len(expected)} of {len(expected)}"

    search.send_keys("zz", Keys.ENTER)
    wait_for(browser, lambda d: field_text(d, "page-range") == "0 of 0", "an empty result")
    assert _listed(browser) == [] and "no miner name contains" in field_text(browser, "list-status")
    screenshot(browser, "miners-list-search")
    assert console_errors(browser) == []


def test_pages_of_the_list(console_stack: ConsoleStack, browser: WebDriver) -> None:
    _signed_in(browser, console_stack, f"/miners?sort=miner&order=asc&limit={PAGE_SIZE}")
    total = len(_api_names(console_stack, sort="miner", order="asc", limit=500))
    assert total > PAGE_SIZE
    first = _api_names(console_stack, sort="miner", order="asc", limit=PAGE_SIZE)
    assert _listed(browser) == first
    assert field_text(browser, "page-range") == f"1\u2013{PAGE_SIZE} of {total}"
    previous = browser.find_element(By.CSS_SELECTOR, '[data-field="page-previous"]')
    assert not previous.is_enabled()

    browser.find_element(By.CSS_SELECTOR, '[data-field="page-next"]').click()
    second = _api_names(console_stack, sort="miner", order="asc", limit=PAGE_SIZE, offset=PAGE_SIZE)
    _rows_become(browser, second, "the second page")
    assert field_text(browser, "page-range") == f"{PAGE_SIZE + 1}\u2013{min(2 * PAGE_SIZE, total)} of {total}"
    assert _query(browser)["offset"] == [str(PAGE_SIZE)]
    assert previous.is_enabled()
    screenshot(browser, "miners-list-page-2")

    browser.back()  # the browser's own Back button returns to the first page
    _rows_become(browser, first, "the first page again")
    assert "offset" not in _query(browser)
    assert console_errors(browser) == []


def test_a_row_opens_its_miner(console_stack: ConsoleStack, browser: WebDriver) -> None:
    _signed_in(browser, console_stack, "/miners?sort=miner&order=asc")
    link = browser.find_element(By.CSS_SELECTOR, f'tr[data-miner="{MINER}"] a[data-field="miner-name"]')

    link.click()

    wait_for(browser, lambda d: _path(d) == f"/miners/{MINER}", "the miner page")
    wait_for(browser, page_ready, "the miner page's first data")
    assert field_text(browser, "miner-name") == MINER
    assert console_errors(browser) == []


def _worker_figures(stats: dict[str, Any]) -> dict[str, tuple[bool, int, int, int, float]]:
    return {w["worker"]: (w["online"], w["accepted"], w["rejected"], w["stale"], w["hashrate"]["1h"])
            for w in stats["workers"]}


# Rows read in the page in one call: a live record redraws the table between two WebDriver calls.
_WORKER_ROWS_SCRIPT: Final = """
const rows = {};
for (const row of document.querySelectorAll('tbody[data-field="workers"] tr')) {
  const cells = {};
  for (const node of row.querySelectorAll("[data-field^='worker-']")) {
    cells[node.dataset.field.slice(7)] = node.innerText;
    if (node.hasAttribute("datetime")) cells[node.dataset.field.slice(7) + "@"] = node.getAttribute("datetime");
  }
  rows[row.dataset.worker] = cells;
}
return rows;
"""


def _page_workers(driver: WebDriver) -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = driver.execute_script(_WORKER_ROWS_SCRIPT)
    return {worker: {name: cells[name] for name in ("state", "accepted", "rejected", "stale", "hashrate")}
            for worker, cells in rows.items()}


def _workers_agree(api: dict[str, tuple[bool, int, int, int, float]], page: dict[str, dict[str, str]]) -> bool:
    if set(api) != set(page):
        return False
    for worker, (online, accepted, rejected, stale, hashrate) in api.items():
        cells = page[worker]
        if cells["state"] != ("online" if online else "offline"):
            return False
        if [figures.count(cells[n]).value for n in ("accepted", "rejected", "stale")] != [accepted, rejected, stale]:
            return False
        if not figures.hashrate(cells["hashrate"]).matches(hashrate):
            return False
    return True


def test_the_miner_page_shows_the_apis_worker_figures(console_stack: ConsoleStack, browser: WebDriver) -> None:
    _signed_in(browser, console_stack, f"/miners/{MINER}")
    stats_path = f"/api/miners/{MINER}/stats?pool=main"

    def read_page() -> dict[str, dict[str, str]]:
        browser.refresh()
        wait_for(browser, page_ready, "the miner page")
        return _page_workers(browser)

    workers = _steady(lambda: _worker_figures(console_stack.api(stats_path, console_stack.keys.read)), read_page,
                      _workers_agree, "the worker figures")
    assert workers and any(online for online, *_ in workers.values())
    stats = console_stack.api(stats_path, console_stack.keys.read)
    assert figures.hashrate(field_text(browser, "hashrate-24h")).matches(stats["hashrate"]["24h"])
    # Both history charts were drawn by uPlot from the history API's complete steps: the hour has
    # the backfill's minutes; the day says so when no complete hour has shares yet (a young stack).
    for chart, step in (("hour", 60), ("day", 3600)):
        assert browser.find_elements(By.CSS_SELECTOR, f"#chart-{chart} canvas"), chart
        rows = _history(console_stack, step)
        assert chart == "day" or rows, "no minutes of history"
        status = field_text(browser, f"chart-{chart}-status")
        assert status == ("" if rows else "no shares in this span"), (chart, status, len(rows))
    screenshot(browser, "miner-page")
    browser.find_element(By.CSS_SELECTOR, "tbody[data-field=workers] tr button").click()  # a worker's charts
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chart-hour .u-legend .u-series")) == 3,
             "the hour chart with the miner and one worker")
    screenshot(browser, "miner-page-charts")
    assert console_errors(browser) == []


def _history(stack: ConsoleStack, step_s: int) -> list[dict[str, Any]]:
    """The miner's rows of the complete steps the page draws: the last 60 minutes or 24 hours."""
    to = int(time.time()) // step_s * step_s
    span = 60 * step_s if step_s == 60 else 24 * step_s
    step = "1m" if step_s == 60 else "1h"
    rows: list[dict[str, Any]] = stack.api(
        f"/api/miners/{MINER}/history?pool=main&step={step}&from={(to - span) * 1000}&to={to * 1000}", stack.keys.read)
    return rows


def _last_shares(driver: WebDriver) -> dict[str, str | None]:
    rows: dict[str, dict[str, str]] = driver.execute_script(_WORKER_ROWS_SCRIPT)
    return {worker: cells.get("last-share@") for worker, cells in rows.items()}


def test_a_worker_figure_moves_live(console_stack: ConsoleStack, browser: WebDriver) -> None:
    _signed_in(browser, console_stack, f"/miners/{MINER}")
    browser.execute_script("window.__chimeraTestMark = 'same document'")
    wait_for(browser, lambda d: field_text(d, "live-status") == "live", "the live stream")
    before = _last_shares(browser)

    def moved(driver: WebDriver) -> list[str]:
        now = _last_shares(driver)
        return [w for w, at in now.items() if at is not None and at != before.get(w)]

    changed = wait_for(browser, moved, "a worker's last share to change", timeout_s=LIVE_WITHIN_S)

    assert browser.execute_script("return window.__chimeraTestMark") == "same document", "the page reloaded"
    assert changed
    screenshot(browser, "miner-page-live")
    assert console_errors(browser) == []


def test_a_miner_key_sees_its_own_page_only(console_stack: ConsoleStack, browser: WebDriver) -> None:
    sign_in(browser, console_stack.base_url, console_stack.keys.miner)
    _open(browser, console_stack, "/miners")
    assert _path(browser) == f"/miners/{MINER}"
    assert field_text(browser, "miner-name") == MINER
    assert browser.find_elements(By.CSS_SELECTOR, 'tbody[data-field="workers"] tr')
    screenshot(browser, "miner-page-miner-key")
    assert console_errors(browser) == []

    browser.get(f"{console_stack.base_url}/miners/{OTHER_MINER}")
    assert _status(browser) == 403
    assert not browser.find_elements(By.CSS_SELECTOR, "#page-data")
    assert MINER in field_text(browser, "error-message")
    screenshot(browser, "miner-page-other-refused")
