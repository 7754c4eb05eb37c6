"""Headless Chromium through Selenium, and what the console tests do with it.

The browser and its driver are Debian's (`chimera dev browser` finds or installs
them): Selenium gets both paths, and `SE_OFFLINE` keeps Selenium Manager from
ever reaching the network for a binary of its own.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from chimera.devstack.browser_bins import ensure_browser_binaries
from chimera.devstack.config import PROJECT_ROOT

ARTIFACTS: Final = PROJECT_ROOT / "test-artifacts" / "console"
WINDOW: Final = (1366, 900)
PAGE_TIMEOUT_S: Final = 20.0
_UNSAFE_FILE_CHARS: Final = re.compile(r"[^A-Za-z0-9_.-]+")

T = TypeVar("T")


def start_browser() -> WebDriver:
    """A fresh headless Chromium (its own temporary profile) with the browser's console log kept."""
    binaries = ensure_browser_binaries()
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(binaries.chromium)
    for flag in ("--headless=new", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}", "--no-first-run", "--disable-extensions"):
        options.add_argument(flag)
    if os.geteuid() == 0:
        # Chromium refuses to run as root inside its own sandbox.
        options.add_argument("--no-sandbox")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(binaries.chromedriver)))
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    driver.set_window_size(*WINDOW)
    return driver


def console_errors(driver: WebDriver) -> list[dict[str, Any]]:
    """The SEVERE entries the page wrote to the browser console since the last call (the log drains)."""
    # Selenium leaves get_log unannotated.
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry for entry in entries if entry.get("level") == "SEVERE"]


def screenshot(driver: WebDriver, name: str) -> Path:
    """The visible page as test-artifacts/console/<name>.png (kept, pass or fail, for a person to look at)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{_UNSAFE_FILE_CHARS.sub('_', name)[:120]}.png"
    driver.save_screenshot(str(path))
    return path


def wait_for(driver: WebDriver, check: Callable[[WebDriver], Literal[False] | T], what: str,
             timeout_s: float = PAGE_TIMEOUT_S) -> T:
    """What `check` returns once it is truthy; a TimeoutException naming `what` otherwise.

    A stale element (the page redrew it between finding and reading) counts as not yet."""
    waiter = WebDriverWait(driver, timeout_s, poll_frequency=0.1,
                           ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    return waiter.until(check, message=f"waited {timeout_s:.0f}s for {what}")


def page_ready(driver: WebDriver) -> bool:
    """The console's test hook: `<body data-ready="1">` once a page's first data is drawn."""
    return driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"


def field_text(driver: WebDriver, name: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text.strip()


def sign_in(driver: WebDriver, base_url: str, key: str) -> None:
    """Fill in and submit the real sign-in form, then wait for the page it leads to to load."""
    driver.get(f"{base_url}/sign-in")
    form_field = wait_for(driver, lambda d: d.find_element(By.NAME, "api_key"), "the sign-in form")
    form_field.clear()
    form_field.send_keys(key)
    # Success and refusal both answer with a new document, which comes with a new `window`:
    # the mark set on the old one is gone. (Asking whether the old form went stale was racy:
    # chromedriver once answered "node does not belong to the document" mid-navigation.)
    driver.execute_script("window.chimeraSignInPending = true;")
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(driver, lambda d: d.execute_script("return window.chimeraSignInPending !== true;"), "the sign-in answer")
    wait_for(driver, lambda d: d.execute_script("return document.readyState") == "complete", "the page load")
