"""A clone in a folder the `postgres` user cannot enter (a fresh clone in /root): the
PostgreSQL node still comes up, its files where that user can reach, and nothing is left
behind once the state folder is gone. Run as root (as CI does) this is the real case;
as another user the node runs as that user, who can enter its own folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from chimera.devstack import pgdir
from chimera.devstack.config import DevStackConfig, DevStackError
from chimera.devstack.postgres import PostgresNode
from chimera.devstack.processes import pid_alive
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

AS_ROOT = os.geteuid() == 0


@pytest.fixture
def closed_home() -> Iterator[Path]:
    """A new folder of mode 0700 with a project folder in it, like a clone in /root."""
    home = Path(tempfile.mkdtemp(prefix="chimera-home-"))
    home.chmod(0o700)
    (home / "clone").mkdir()
    yield home
    shutil.rmtree(home, ignore_errors=True)


def _config(state: Path) -> DevStackConfig:
    return replace(DevStackConfig.from_env(), state_dir=state, postgres_port=free_port())


async def test_postgres_comes_up_from_a_folder_its_user_cannot_enter(closed_home: Path) -> None:
    config = _config(closed_home / "clone" / ".chimera")
    node = PostgresNode(config)
    try:
        status = node.up()
        assert status.running and status.database_url is not None and status.pid is not None
        conn = await asyncpg.connect(status.database_url)
        try:
            assert await conn.fetchval("SELECT current_database()") == "chimera"
        finally:
            await conn.close()
        if AS_ROOT:
            assert not node.cluster_dir.is_relative_to(closed_home)
            assert node.cluster_dir.parent == pgdir.FALLBACK_ROOT
            note = (config.postgres_dir / pgdir.LOCATION_NOTE).read_text()
            assert note.splitlines()[0] == str(node.cluster_dir)
        else:
            assert node.cluster_dir == config.postgres_dir
        # Found again by a fresh node (as `chimera dev status` and `down` make one).
        assert PostgresNode(config).status().pid == status.pid
    finally:
        node.down()
    assert status.pid is not None and not pid_alive(status.pid)

    # The state folder deleted (`make clean`, a test's private stack): the next sweep
    # removes the cluster that was kept elsewhere for it.
    shutil.rmtree(config.state_dir)
    pgdir.sweep_orphans()
    assert not node.cluster_dir.exists()


def test_a_cluster_that_cannot_be_reached_any_more_keeps_the_hint(closed_home: Path) -> None:
    # A cluster made where its user could reach it, then a parent closed: not moved
    # (its data is there), and the start says what to do.
    config = _config(closed_home / "clone" / ".chimera")
    data = config.postgres_dir / "data"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("16\n")
    with pytest.raises(DevStackError) as caught:
        PostgresNode(config).up()
    if AS_ROOT:
        assert "cannot reach" in str(caught.value)
        assert "chmod o+x" in caught.value.hint and "CHIMERA_STATE_DIR" in caught.value.hint
    assert PostgresNode(config).cluster_dir == config.postgres_dir


def test_who_can_enter_a_closed_folder(closed_home: Path) -> None:
    me = pwd.getpwuid(os.geteuid())
    nobody = pwd.getpwnam("nobody")
    inside = closed_home / "clone" / ".chimera"
    assert pgdir.user_can_enter(inside, me)
    assert not pgdir.user_can_enter(inside, nobody)
    closed_home.chmod(0o711)
    assert pgdir.user_can_enter(inside, nobody)
    # Not made yet below a passable folder: passable, as it will be made 0755.
    assert pgdir.user_can_enter(inside / "not" / "yet", nobody)
    assert pgdir.cluster_dir(inside / "postgres", None) == inside / "postgres"
