"""A database that is away vs a statement that is wrong (shared/db/errors.py)."""

from __future__ import annotations

import asyncpg
import pytest

from shared.db.errors import database_unavailable

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("error", "unavailable"), [
    (ConnectionRefusedError(111, "refused"), True),
    (TimeoutError(), True),
    (asyncpg.InterfaceError("pool is closed"), True),
    (asyncpg.CannotConnectNowError("the database system is starting up"), True),  # 57P03
    (asyncpg.AdminShutdownError("terminating connection"), True),  # 57P01
    (asyncpg.TooManyConnectionsError("too many clients"), True),  # 53300
    (asyncpg.ConnectionDoesNotExistError("closed"), True),  # 08003
    (asyncpg.UndefinedColumnError("column x does not exist"), False),  # a bug, not an outage
    (asyncpg.UniqueViolationError("duplicate key"), False),
    (asyncpg.SerializationError("could not serialize"), False),  # a retry cures it; the server is up
    (ValueError("not a database error"), False),
])
def test_unavailable_means_the_server_not_the_statement(error: BaseException, unavailable: bool) -> None:
    assert database_unavailable(error) is unavailable
