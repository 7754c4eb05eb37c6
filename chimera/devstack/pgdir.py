"""Where the PostgreSQL cluster's files go: `<state>/postgres`, unless its owner cannot get there.

Under root the cluster runs as the `postgres` system user, which must pass
through every folder above its data directory. A clone in a home folder such
as /root (mode 0700) fails that, so then the cluster lives in
`/var/lib/chimera/<hash of <state>/postgres>` instead and `<state>/postgres`
keeps a note saying where. The hash makes the choice the same at every
start, with nothing to remember; a cluster whose state folder was deleted
(`make clean`, a test's private stack) is removed at the next such start.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
from pathlib import Path

from chimera.devstack.processes import pid_alive, read_pid

FALLBACK_ROOT = Path("/var/lib/chimera")
LOCATION_NOTE = "cluster-location"
ORIGIN_FILE = "origin"


def user_can_enter(folder: Path, user: pwd.struct_passwd) -> bool:
    """Whether `user` may pass through `folder` and every folder above it (the search bit, as
    the kernel checks it; ACLs aside, which only ever make us move when we need not). Folders
    not made yet count as passable: we make them with the usual 0755."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for step in (folder, *folder.parents):
        try:
            info = step.stat()
        except FileNotFoundError:
            continue
        if info.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif info.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def fallback_dir(wanted: Path, root: Path = FALLBACK_ROOT) -> Path:
    return root / hashlib.sha256(str(wanted).encode()).hexdigest()[:16]


def cluster_dir(wanted: Path, run_as: str | None, root: Path = FALLBACK_ROOT) -> Path:
    """`wanted` unless the cluster's owner `run_as` cannot reach it. A cluster already made
    stays where it is, so that chmod-ing a parent later does not hide it."""
    if run_as is None:
        return wanted
    fallback = fallback_dir(wanted, root)
    if (wanted / "data" / "PG_VERSION").exists():
        return wanted
    if (fallback / "data" / "PG_VERSION").exists():
        return fallback
    try:
        user = pwd.getpwnam(run_as)
    except KeyError:
        return wanted  # starting will say that the user is missing
    return wanted if user_can_enter(wanted.parent, user) else fallback


def claim(wanted: Path, cluster: Path) -> None:
    """Mark `cluster` as `wanted`'s and leave a note in `wanted` for whoever looks there."""
    cluster.parent.mkdir(parents=True, exist_ok=True)
    # Traversable by the postgres user whatever root's umask is.
    cluster.parent.chmod(0o755)
    cluster.mkdir(exist_ok=True)
    wanted.mkdir(parents=True, exist_ok=True)
    (wanted / LOCATION_NOTE).write_text(
        f"{cluster}\n# PostgreSQL's files are there: the postgres user cannot enter {wanted.parent}\n"
    )
    (cluster / ORIGIN_FILE).write_text(f"{wanted}\n")


def sweep_orphans(root: Path = FALLBACK_ROOT) -> list[Path]:
    """Remove the clusters whose state folder is gone and whose server is not running."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for cluster in root.iterdir():
        try:
            origin = Path((cluster / ORIGIN_FILE).read_text().strip())
        except OSError:
            continue  # not one of ours, or not claimed yet
        if origin.exists():
            continue
        pid = read_pid(cluster / "data" / "postmaster.pid")
        if pid is not None and pid_alive(pid):
            continue
        shutil.rmtree(cluster, ignore_errors=True)
        removed.append(cluster)
    return removed
