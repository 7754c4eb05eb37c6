"""Finding the console tests' Chromium and chromedriver, and what happens when they are missing (no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from chimera.devstack import browser_bins
from chimera.devstack.config import DevStackError

pytestmark = pytest.mark.unit


def _which(present: set[str]) -> Callable[[str], str | None]:
    def which(name: str) -> str | None:
        if name in present:
            return name if name.startswith("/") else f"/usr/bin/{name}"
        return None

    return which


def test_debians_real_chromium_binary_is_preferred_to_its_wrapper(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", _which({"/usr/lib/chromium/chromium", "chromium", "chromedriver"}))
    found = browser_bins.ensure_browser_binaries()
    assert found == browser_bins.BrowserBinaries(Path("/usr/lib/chromium/chromium"), Path("/usr/bin/chromedriver"))


def test_only_the_missing_package_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    present = {"chromium"}
    installed: list[Sequence[str]] = []

    def apt_install(packages: Sequence[str], reason: str) -> None:
        installed.append(list(packages))
        present.add("chromedriver")

    monkeypatch.setattr("shutil.which", _which(present))
    monkeypatch.setattr(browser_bins, "apt_install", apt_install)
    found = browser_bins.ensure_browser_binaries()
    assert installed == [["chromium-driver"]]
    assert found.chromedriver == Path("/usr/bin/chromedriver")


def test_without_root_the_error_names_both_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", _which(set()))
    monkeypatch.setattr("chimera.devstack.processes.os.geteuid", lambda: 1000)
    with pytest.raises(DevStackError) as refused:
        browser_bins.ensure_browser_binaries()
    assert "apt-get install -y chromium chromium-driver" in refused.value.hint


def test_packages_that_install_no_binary_are_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", _which({"chromium"}))
    monkeypatch.setattr(browser_bins, "apt_install", lambda packages, reason: None)
    with pytest.raises(DevStackError, match="installed chromium-driver but found no chromedriver"):
        browser_bins.ensure_browser_binaries()
