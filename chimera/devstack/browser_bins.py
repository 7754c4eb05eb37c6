"""Find (or install) the Chromium and chromedriver the console's browser tests drive.

Debian's `chromium` and `chromium-driver` are used rather than a browser Selenium
Manager or Playwright would download: the two packages come from the same source
build, so the driver always speaks the browser's protocol version, and a test run
never reaches the network for a binary.

The driver is looked for on PATH first, then where Debian puts it; Debian's
`/usr/bin/chromium` is a shell wrapper that sets flags and execs the real binary
in /usr/lib/chromium, which is what Selenium should start (the wrapper reads
/etc/chromium.d but adds nothing headless tests need).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from chimera.devstack.config import DevStackError
from chimera.devstack.processes import apt_install

__all__ = ["BrowserBinaries", "ensure_browser_binaries", "find_browser_binaries"]

# field -> (paths or names to look for, in order; Debian package that provides it)
_TOOLS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "chromium": (("/usr/lib/chromium/chromium", "chromium", "chromium-browser"), "chromium"),
    "chromedriver": (("chromedriver", "/usr/lib/chromium/chromedriver", "/usr/bin/chromedriver"),
                     "chromium-driver"),
}


@dataclass(frozen=True)
class BrowserBinaries:
    chromium: Path
    chromedriver: Path


def _find(candidates: tuple[str, ...]) -> Path | None:
    for candidate in candidates:
        found = shutil.which(candidate)  # an absolute path is checked for being executable too
        if found is not None:
            return Path(found)
    return None


def find_browser_binaries() -> tuple[dict[str, Path], list[str]]:
    """What is found now, and the Debian packages that would provide the rest."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for field, (candidates, package) in _TOOLS.items():
        path = _find(candidates)
        if path is not None:
            found[field] = path
        elif package not in missing:
            missing.append(package)
    return found, missing


def ensure_browser_binaries() -> BrowserBinaries:
    """Both paths, installing the missing Debian packages first (as root with apt-get).

    Raises DevStackError naming the packages when we cannot install them, or when
    they installed but still did not provide their binaries."""
    found, missing = find_browser_binaries()
    if missing:
        apt_install(missing, "the browser for the console tests (" + ", ".join(missing) + ")")
        found, still_missing = find_browser_binaries()
        if still_missing:
            raise DevStackError(
                f"installed {', '.join(missing)} but found no {', '.join(f for f in _TOOLS if f not in found)}",
                "put chromium and chromedriver (the same version) on PATH",
            )
    return BrowserBinaries(chromium=found["chromium"], chromedriver=found["chromedriver"])
