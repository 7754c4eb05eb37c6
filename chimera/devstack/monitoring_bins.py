"""Find (or install) the Prometheus tool chain the local stack and the deploy tests use.

Debian ships every tool in /usr/bin, but under its own names for the daemons
(`prometheus-alertmanager`, `prometheus-postgres-exporter`,
`prometheus-node-exporter`); upstream tarballs use the short names. Both are
looked for, on PATH first so a newer hand-installed build wins.

Installing the packages does not start anything without systemd (their
postinst scripts only call `deb-systemd-invoke`, a no-op here), so nothing is
left running after `ensure_monitoring_binaries()`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Final

from chimera.devstack.config import DevStackError
from chimera.devstack.processes import apt_install

__all__ = ["MonitoringBinaries", "ensure_monitoring_binaries", "find_monitoring_binaries"]

# Places apt packages and manual installs put binaries, for when PATH is minimal (cron, sudo).
_DIRS: Final = (Path("/usr/bin"), Path("/usr/sbin"), Path("/usr/local/bin"), Path("/usr/local/sbin"),
                Path("/opt/prometheus"), Path("/opt/alertmanager"))

# field -> (names to look for, Debian package that provides it)
_TOOLS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "prometheus": (("prometheus",), "prometheus"),
    "promtool": (("promtool",), "prometheus"),
    "alertmanager": (("prometheus-alertmanager", "alertmanager"), "prometheus-alertmanager"),
    "amtool": (("amtool",), "prometheus-alertmanager"),
    "postgres_exporter": (("prometheus-postgres-exporter", "postgres_exporter"), "prometheus-postgres-exporter"),
    "node_exporter": (("prometheus-node-exporter", "node_exporter"), "prometheus-node-exporter"),
}


@dataclass(frozen=True)
class MonitoringBinaries:
    prometheus: Path
    promtool: Path
    alertmanager: Path
    amtool: Path
    postgres_exporter: Path
    node_exporter: Path


def _find(names: tuple[str, ...]) -> Path | None:
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return Path(found)
    for directory in _DIRS:
        for name in names:
            candidate = directory / name
            if candidate.is_file() and shutil.which(str(candidate)) is not None:  # executable
                return candidate
    return None


def find_monitoring_binaries() -> tuple[dict[str, Path], list[str]]:
    """What is found now, and the Debian packages that would provide the rest."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for field, (names, package) in _TOOLS.items():
        path = _find(names)
        if path is not None:
            found[field] = path
        elif package not in missing:
            missing.append(package)
    return found, missing


def ensure_monitoring_binaries() -> MonitoringBinaries:
    """Every tool's path, installing the missing Debian packages first (as root).

    Raises DevStackError saying what to install when not root, or when a package
    installed but still did not provide its binary (a different distribution layout)."""
    found, missing = find_monitoring_binaries()
    if missing:
        apt_install(missing, "the Prometheus tool chain (" + ", ".join(missing) + ")")
        found, still_missing = find_monitoring_binaries()
        if still_missing:
            absent = [f for f in _TOOLS if f not in found]
            raise DevStackError(
                f"installed {', '.join(missing)} but found no {', '.join(absent)}",
                "put the binaries on PATH (upstream tarballs from prometheus.io/download work too)",
            )
    return MonitoringBinaries(**{f.name: found[f.name] for f in fields(MonitoringBinaries)})
