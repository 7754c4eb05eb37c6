"""A PostgreSQL cluster of the project's own, from the machine's binaries.

`initdb` into the state folder, `pg_ctl` to start and stop. PostgreSQL refuses
to run as root, so under root the cluster belongs to the `postgres` system
user, and lives where that user can reach (chimera/devstack/pgdir.py). Port 5432 unless something else holds it, in which case the next free
port is used and recorded (the endpoints file tells clients which).
"""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from chimera.devstack import pgdir
from chimera.devstack.config import DevStackConfig, DevStackError
from chimera.devstack.processes import apt_install, pid_alive, port_free, port_open, run, wait_until

START_TIMEOUT_S = 60
PORT_SEARCH_SPAN = 20


@dataclass(frozen=True)
class PostgresStatus:
    running: bool
    port: int | None
    database_url: str | None
    pid: int | None = None


def _version_key(bindir: Path) -> tuple[int, ...]:
    try:
        return (int(bindir.parent.name),)
    except ValueError:
        return (0,)


def find_bindir() -> Path | None:
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    return None


def ensure_binaries() -> Path:
    bindir = find_bindir()
    if bindir is None:
        apt_install(["postgresql"], "PostgreSQL server binaries (initdb, pg_ctl)")
        bindir = find_bindir()
    if bindir is None:
        raise DevStackError("PostgreSQL was installed but initdb/pg_ctl are still not found")
    return bindir


class PostgresNode:
    def __init__(self, config: DevStackConfig) -> None:
        self._config = config
        # PostgreSQL will not run as root; under root the cluster is the postgres user's.
        self._run_as = "postgres" if os.geteuid() == 0 else None
        self._dir = pgdir.cluster_dir(config.postgres_dir, self._run_as)
        self._data = self._dir / "data"
        self._log = self._dir / "postgres.log"
        self._port_file = self._dir / "port"

    @property
    def cluster_dir(self) -> Path:
        """Where the cluster's files are: `<state>/postgres`, or where its owner can reach."""
        return self._dir

    def database_url(self, port: int) -> str:
        return f"postgresql://{self._config.postgres_user}@127.0.0.1:{port}/{self._config.postgres_database}"

    def status(self) -> PostgresStatus:
        port = self._running_port()
        if port is None:
            return PostgresStatus(False, None, None)
        return PostgresStatus(True, port, self.database_url(port), self._postmaster_pid())

    def up(self) -> PostgresStatus:
        if self._running_port() is not None:
            return self.status()
        bindir = ensure_binaries()
        self._prepare_dir()
        if not (self._data / "PG_VERSION").exists():
            run(
                [str(bindir / "initdb"), "-D", str(self._data), "-U", self._config.postgres_user,
                 "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C"],
                what="initdb", log=self._log, user=self._run_as,
            )
        port = self._free_port()
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c max_connections=300 -c shared_buffers=256MB"
        )
        run(
            [str(bindir / "pg_ctl"), "-D", str(self._data), "-l", str(self._log), "-w",
             "-t", str(START_TIMEOUT_S), "-o", options, "start"],
            what=f"starting PostgreSQL (log: {self._log})", user=self._run_as,
            timeout_s=START_TIMEOUT_S + 10,
        )
        self._port_file.write_text(f"{port}\n")
        self._ensure_database(bindir, port)
        return self.status()

    def down(self) -> None:
        pid = self._postmaster_pid()
        if pid is None:
            return
        bindir = ensure_binaries()
        run([str(bindir / "pg_ctl"), "-D", str(self._data), "-m", "fast", "-w", "-t", "60", "stop"],
            what="stopping PostgreSQL", user=self._run_as, timeout_s=90)
        # pg_ctl returns once the pid file is gone, which the postmaster removes just before it
        # exits: on a loaded machine it was still alive then. Down means no process left.
        if not wait_until(lambda: not pid_alive(pid), 30):
            raise DevStackError(f"PostgreSQL (pid {pid}) did not exit after stopping",
                                f"see {self._log}; stop it with `kill {pid}`")

    def _prepare_dir(self) -> None:
        if self._dir != self._config.postgres_dir:
            pgdir.sweep_orphans(self._dir.parent)
            pgdir.claim(self._config.postgres_dir, self._dir)
        self._dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is None:
            return
        try:
            owner = pwd.getpwnam(self._run_as)
        except KeyError:
            raise DevStackError(
                f"running as root, but there is no `{self._run_as}` user to own the cluster",
                "install Debian's postgresql package (it creates the user), or run as a normal user",
            ) from None
        os.chown(self._dir, owner.pw_uid, owner.pw_gid)
        for path in (self._log,):
            path.touch(exist_ok=True)
            os.chown(path, owner.pw_uid, owner.pw_gid)
        probe = run(["sh", "-c", f"test -w '{self._dir}' && echo ok || echo no"],
                    what="checking the cluster folder", user=self._run_as)
        if probe.strip() != "ok":
            raise DevStackError(
                f"the `{self._run_as}` user cannot reach {self._dir}",
                "make its parent folders traversable (chmod o+x) or set CHIMERA_STATE_DIR "
                "to a folder it can reach",
            )

    def _postmaster_pid(self) -> int | None:
        try:
            pid = int((self._data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def _running_port(self) -> int | None:
        if self._postmaster_pid() is None:
            return None
        try:
            # postmaster.pid's fourth line is the port it listens on.
            port = int((self._data / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, ValueError, IndexError):
            return None
        return port if port_open(port) else None

    def _free_port(self) -> int:
        first = self._config.postgres_port
        for port in range(first, first + PORT_SEARCH_SPAN):
            if port_free(port):
                if port != first:
                    print(f"port {first} is taken; PostgreSQL will listen on {port}", flush=True)
                return port
        raise DevStackError(
            f"ports {first}-{first + PORT_SEARCH_SPAN - 1} are all taken",
            "free one, or set CHIMERA_PG_PORT",
        )

    def _ensure_database(self, bindir: Path, port: int) -> None:
        name = self._config.postgres_database
        psql = [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port),
                "-U", self._config.postgres_user, "-d", "postgres", "-tAc"]
        exists = run([*psql, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
                     what="checking the database")
        if exists.strip() != "1":
            run([*psql, f'CREATE DATABASE "{name}"'], what=f"creating database {name}")


def _has_c_utf8() -> bool:
    return Path("/usr/lib/locale/C.utf8").exists() or Path("/usr/lib/locale/C.UTF-8").exists()
