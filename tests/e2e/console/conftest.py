"""Fixtures of the console's browser tests: the live system (`console_stack`) and a Chromium (`browser`).

Helpers the tests call (`sign_in`, `console_errors`, `screenshot`, ...) live in
browser_support.py; the system in stack.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.conftest import Endpoints
from tests.e2e.console.browser_support import ARTIFACTS, screenshot, start_browser
from tests.e2e.console.stack import ConsoleStack, running_console_stack

_shots_taken: list[str] = []


@pytest.fixture(scope="package")
def console_stack(endpoints: Endpoints) -> Iterator[ConsoleStack]:
    """The four services, keys and a live simulated pool, shared by every browser test module (one
    start-up, about 20 s, instead of one per page); all of it removed after the last. Tests compare a
    page with the API at that moment, so what other modules added (alerts, dashboards) does not matter;
    the ingest restart test runs last (test_pool_page.py, last in file order)."""
    with running_console_stack(endpoints) as stack:
        yield stack


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[WebDriver]:
    """A headless Chromium with a fresh profile (no cookie survives a test).

    Whatever page it shows at the end is saved as test-artifacts/console/<test>.png, pass or fail."""
    driver = start_browser()
    try:
        yield driver
    finally:
        try:
            _shots_taken.append(str(screenshot(driver, f"{request.node.name}-end")))
        except WebDriverException as exc:
            # The browser itself failed: the test's own failure says more than a missing picture.
            print(f"no screenshot of {request.node.name}: {exc.msg}")
        finally:
            driver.quit()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _shots_taken:
        terminalreporter.write_line(f"console screenshots: {ARTIFACTS}")
