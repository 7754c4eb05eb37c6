"""Small process and port helpers for the local stack (no business logic)."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from chimera.devstack.config import DevStackError


def port_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind `port` now. Stricter than "nobody answers there": a
    client connection's local port (Linux hands out 32768-60999) blocks a bind too,
    and SO_REUSEADDR, as servers set it, lets a port in TIME_WAIT count as free."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); it is not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval_s)
    return check()


def terminate(pid: int, timeout_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if the process outlives the timeout."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_until(lambda: not pid_alive(pid), timeout_s):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_until(lambda: not pid_alive(pid), 10)


def run(args: Sequence[str], *, what: str, log: Path | None = None, timeout_s: float = 600,
        user: str | None = None) -> str:
    """Run a command to completion; on failure raise with the tail of its output."""
    command = list(args)
    if user is not None and os.geteuid() == 0:
        command = ["runuser", "-u", user, "--", *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise DevStackError(f"{what}: {command[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise DevStackError(f"{what}: no answer after {timeout_s:.0f}s") from None
    output = done.stdout + done.stderr
    if log is not None:
        with log.open("a") as sink:
            sink.write(f"$ {' '.join(command)}\n{output}\n")
    if done.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise DevStackError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def apt_install(packages: Sequence[str], reason: str) -> None:
    """Install Debian packages when we are root; otherwise say exactly what to install."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DevStackError(
            f"{reason} is missing",
            f"install it first, e.g. `sudo apt-get install -y {' '.join(packages)}`",
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *packages]):
        done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise DevStackError(f"`{' '.join(args)}` failed:\n{done.stderr[-2000:]}")


def signal_group(pid: int, sig: signal.Signals) -> None:
    """To the process's whole session group: whatever it started goes with it."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def answers_200(url: str, timeout_s: float = 2.0) -> bool:
    """Whether a GET of `url` answers 200. Refused, reset, timed out, 503 (HTTPError is an
    OSError): all mean not ready yet."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status) == 200
    except (OSError, http.client.HTTPException):
        return False
