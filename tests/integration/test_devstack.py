"""`chimera dev up|down`: idempotent, healthy when it returns, leaves nothing behind.

Runs a second, private stack (own state folder, own ports) beside the one the
other tests use, so it can be started and stopped freely.
"""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import replace

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from chimera.devstack import stack
from chimera.devstack.config import PROJECT_ROOT, DevStackConfig, DevStackError
from chimera.devstack.processes import pid_alive, port_free, port_open
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def private_config() -> Iterator[DevStackConfig]:
    # Under the project folder, not pytest's tmp (mode 700 under root), so that
    # the postgres system user can reach the cluster's data directory.
    state = PROJECT_ROOT / ".chimera" / "test-stacks" / uuid.uuid4().hex[:8]
    config = replace(
        DevStackConfig.from_env(),
        state_dir=state,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        postgres_port=free_port(),
        kafka_heap="512m",
    )
    yield config
    stack.down(config)
    shutil.rmtree(state, ignore_errors=True)


async def test_up_twice_then_down_leaves_no_process(private_config: DevStackConfig) -> None:
    first = stack.ensure_up(private_config)
    parts = {name: detail for name, running, detail in stack.status(private_config) if running}
    assert set(parts) == {"kafka", "postgres"}
    kafka_pid = int(parts["kafka"].rsplit("pid ", 1)[1].rstrip(")"))
    postmaster_file = private_config.postgres_dir / "data" / "postmaster.pid"
    postgres_pid = int(postmaster_file.read_text().split()[0])

    second = stack.ensure_up(private_config)
    assert second == first
    assert f"pid {kafka_pid}" in dict((n, d) for n, _, d in stack.status(private_config))["kafka"]

    # Healthy means usable: the broker answers metadata and the database a query.
    admin = AIOKafkaAdminClient(bootstrap_servers=first.kafka_bootstrap_servers)
    await admin.start()
    try:
        assert isinstance(await admin.list_topics(), list)
    finally:
        await admin.close()
    conn = await asyncpg.connect(first.database_url)
    try:
        assert await conn.fetchval("SELECT current_database()") == "chimera"
    finally:
        await conn.close()
    assert private_config.endpoints_file.read_text().count("export ") == 2

    stack.down(private_config)
    stack.down(private_config)  # a second down is harmless
    assert not pid_alive(kafka_pid)
    assert not pid_alive(postgres_pid)
    assert not port_open(private_config.kafka_port)
    assert not port_open(private_config.postgres_port)
    assert all(not running for _, running, _ in stack.status(private_config))
    assert not private_config.endpoints_file.exists()


def test_kafka_port_taken_is_reported(private_config: DevStackConfig) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", private_config.kafka_port))
    squatter.listen()
    try:
        with pytest.raises(DevStackError) as caught:
            stack.ensure_up(private_config)
    finally:
        squatter.close()
    assert f"port {private_config.kafka_port} is taken" in str(caught.value)
    assert "CHIMERA_KAFKA_PORT" in caught.value.hint


def test_postgres_port_taken_moves_to_a_free_one(private_config: DevStackConfig) -> None:
    from chimera.devstack.postgres import PostgresNode

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", private_config.postgres_port))
    squatter.listen()
    try:
        status = PostgresNode(private_config).up()
    finally:
        squatter.close()
    assert status.running and status.port not in (None, private_config.postgres_port)


def test_a_port_held_by_a_client_connection_is_not_free() -> None:
    # Nobody listens there, yet a server could not bind it: the case a connect() probe misses.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as client:
            local_port = client.getsockname()[1]
            assert not port_open(local_port)
            assert not port_free(local_port)
    assert port_free(free_port())
