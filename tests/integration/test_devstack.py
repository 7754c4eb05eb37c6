"""Kafka and PostgreSQL of `chimera dev up`: a taken port is reported or avoided.

Runs a second, private stack (own state folder, own ports) beside the one the
other tests use, so it can be started and stopped freely. The whole stack's
life (up, a second up, a service restarted, down leaving nothing) is in
tests/integration/devstack/test_whole_stack.py.
"""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from chimera.devstack import stack
from chimera.devstack.config import PROJECT_ROOT, DevStackConfig, DevStackError
from chimera.devstack.processes import port_free, port_open
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def private_config() -> Iterator[DevStackConfig]:
    # Under the project folder, where the postgres system user (the cluster's owner under
    # root) reaches it in place; devstack/test_unreachable_state.py covers a folder it cannot.
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
