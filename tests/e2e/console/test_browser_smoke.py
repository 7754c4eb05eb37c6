"""The browser tooling itself, proven on a page that needs a real browser: the API docs (Swagger UI).

The page's HTML is an empty shell; the title of the API and the list of operations
exist only once its JavaScript has fetched /openapi.json and rendered it.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from tests.e2e.console.browser_support import console_errors, screenshot, wait_for
from tests.e2e.console.stack import ConsoleStack

pytestmark = pytest.mark.e2e


def test_api_docs_render_in_chromium(console_stack: ConsoleStack, browser: WebDriver) -> None:
    browser.get(f"{console_stack.base_url}/docs")

    assert browser.title == "Chimera Monitor API - API docs"
    heading = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title"),
                       "Swagger UI's rendering of the API title")
    assert heading.text.startswith("Chimera Monitor API")
    operations = browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    assert any(op.get_attribute("data-path") == "/api/pool/stats" for op in operations)
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)")
    assert "/openapi.json" in fetched
    screenshot(browser, "api-docs")
    assert console_errors(browser) == []
