"""A process of the local stack in the background: launched detached with a log and a pid
file, and found again only when it is this stack's.

`CHIMERA_STATE_DIR` in a process's environment says whose stack it belongs to, so a
recycled pid, or the same part of another stack (the tests run private ones), is never
taken for ours. Used by the services (services.py) and the monitoring parts (monitoring.py).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from chimera.devstack.processes import cmdline, pid_alive, read_pid

STATE_DIR_VARIABLE = "CHIMERA_STATE_DIR"


def stack_pid(pid_file: Path, state_dir: Path, *, command_has: str = "") -> int | None:
    """The pid in `pid_file` while that process runs, belongs to the stack at `state_dir`
    and (with `command_has`) was started with that in its command line."""
    pid = read_pid(pid_file)
    if pid is None or not pid_alive(pid):
        return None
    command = cmdline(pid)
    if not command or (command_has and command_has not in command + " "):
        return None
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if f"{STATE_DIR_VARIABLE}={state_dir}".encode() in environ else None


def launch(command: Sequence[str], *, cwd: Path, env: Mapping[str, str], state_dir: Path,
           log_path: Path, pid_file: Path, banner: str) -> int:
    """Start `command` in a session of its own (it outlives `chimera dev up` and ignores the
    terminal's Ctrl-C), stdout and stderr appended to `log_path` under a dated `banner`
    line, its pid written to `pid_file`; returns the pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} chimera dev up: {banner}\n".encode())
        log.flush()
        process = subprocess.Popen(list(command), cwd=cwd, env={**env, STATE_DIR_VARIABLE: str(state_dir)},
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    pid_file.write_text(f"{process.pid}\n")
    return process.pid
